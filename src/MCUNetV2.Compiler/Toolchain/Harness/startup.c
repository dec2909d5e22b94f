/*
 * Minimal Cortex-M7 startup for the MCUNetV2 verification harness (QEMU mps2-an500).
 * Vector table, reset handler (copy .data, zero .bss, enable the FPU, set up semihosting stdio, call main, exit),
 * and fault handlers that report through semihosting and stop QEMU with a non-zero exit code.
 */
#include <stdint.h>
#include <stdlib.h>

extern uint32_t __stack_top[];
extern uint32_t __data_load[], __data_start[], __data_end[];
extern uint32_t __bss_start[], __bss_end[];

extern int main(void);
extern void initialise_monitor_handles(void);

void Reset_Handler(void);
void Default_Handler(void);
void HardFault_Handler(void);

/* Semihosting call: r0 = operation, r1 = parameter; BKPT 0xAB on M-profile. */
static inline uint32_t semihost(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static void __attribute__((noreturn)) fatal(const char *message)
{
    semihost(0x04 /* SYS_WRITE0 */, message);
    /* SYS_EXIT with a reason other than ADP_Stopped_ApplicationExit: QEMU exits with status 1. */
    semihost(0x18 /* SYS_EXIT */, (const void *)0x20023 /* ADP_Stopped_RunTimeErrorUnknown */);
    for (;;) { }
}

void HardFault_Handler(void) { fatal("harness: HardFault\n"); }
void MemManage_Handler(void) { fatal("harness: MemManage fault\n"); }
void BusFault_Handler(void) { fatal("harness: BusFault\n"); }
void UsageFault_Handler(void) { fatal("harness: UsageFault\n"); }
void Default_Handler(void) { fatal("harness: unexpected exception\n"); }

/* crti.o/crtn.o are not linked (-nostartfiles); newlib's __libc_init_array/__libc_fini_array still call these. */
void _init(void) { }
void _fini(void) { }

extern void __libc_init_array(void);

typedef void (*vector_t)(void);

__attribute__((section(".isr_vector"), used))
const vector_t vector_table[16 + 32] = {
    (vector_t)(uintptr_t)__stack_top, /* initial main stack pointer */
    Reset_Handler,
    Default_Handler,    /* NMI */
    HardFault_Handler,
    MemManage_Handler,
    BusFault_Handler,
    UsageFault_Handler,
    0, 0, 0, 0,         /* reserved */
    Default_Handler,    /* SVCall */
    Default_Handler,    /* DebugMonitor */
    0,                  /* reserved */
    Default_Handler,    /* PendSV */
    Default_Handler,    /* SysTick */
    /* external interrupts (none enabled) */
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
};

void __attribute__((noreturn)) Reset_Handler(void)
{
    /* Enable CP10/CP11 (FPU) full access before any floating-point instruction runs. */
    volatile uint32_t *cpacr = (volatile uint32_t *)0xE000ED88u;
    *cpacr |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");

    /* Enable the MemManage, BusFault and UsageFault handlers so faults are reported precisely. */
    volatile uint32_t *shcsr = (volatile uint32_t *)0xE000ED24u;
    *shcsr |= (1u << 16) | (1u << 17) | (1u << 18);

    /* Copy the initial values of .data from flash, zero .bss. */
    const uint32_t *src = __data_load;
    for (uint32_t *dst = __data_start; dst < __data_end; ) *dst++ = *src++;
    for (uint32_t *dst = __bss_start; dst < __bss_end; ) *dst++ = 0;

    initialise_monitor_handles();
    __libc_init_array();
    exit(main());
}
