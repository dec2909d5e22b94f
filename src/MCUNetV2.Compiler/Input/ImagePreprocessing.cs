using MCUNetV2.Compiler.Diagnostics;
using MCUNetV2.Compiler.Graph;
using MCUNetV2.Compiler.Pipeline;

namespace MCUNetV2.Compiler.Input;

/// <summary>
/// Decoded 8-bit pixels -> the model's float input (NHWC), by <see cref="Preprocessing"/>: convert to
/// <see cref="Preprocessing.Channels"/>, fit to the model's height and width (<see cref="Preprocessing.Resize"/>,
/// <see cref="Preprocessing.Interpolation"/>, half-pixel centres), then x = (pixel - Mean[c]) * Scale[c].
/// Shared by every image source: picture files (<see cref="ImageLoader"/>) and IDX files (<see cref="IdxLoader"/>).
/// </summary>
public static class ImagePreprocessing
{
    /// <summary>Number of channels an image has after conversion to <paramref name="order"/>.</summary>
    public static int ChannelCount(ChannelOrder order) => order == ChannelOrder.Gray ? 1 : 3;

    /// <summary>MCU4001 (at <paramref name="source"/>) when ChannelOrder does not give the model's channel count.</summary>
    public static void CheckChannels(Preprocessing pre, TensorShape shape, string source)
    {
        int channels = ChannelCount(pre.Channels);
        if (shape.C != channels)
            throw new CompilerException(ErrorCodes.BadMetadata,
                $"the model takes {shape.C} input channels but ChannelOrder={pre.Channels} gives {channels}", source);
    }

    /// <summary>
    /// <paramref name="pixels"/>: <paramref name="height"/> x <paramref name="width"/> pixels of
    /// <paramref name="channels"/> bytes each (1 gray, 2 gray + alpha, 3 RGB, 4 RGBA), rows top to bottom.
    /// </summary>
    public static float[] ToModelInput(byte[] pixels, int width, int height, int channels, Preprocessing pre, TensorShape shape, string source)
    {
        CheckChannels(pre, shape, source);
        int target = ChannelCount(pre.Channels);
        var converted = ConvertChannels(pixels, width * height, channels, target);
        var resized = Resize(converted, width, height, target, shape.W, shape.H, pre.Resize, pre.Interpolation);
        var result = new float[resized.Length];
        for (int i = 0; i < resized.Length; i++)
        {
            int c = i % target;
            int src = pre.Channels == ChannelOrder.Bgr ? target - 1 - c : c;
            float mean = pre.Mean[Math.Min(c, pre.Mean.Length - 1)], scale = pre.Scale[Math.Min(c, pre.Scale.Length - 1)];
            result[i] = (resized[i - c + src] - mean) * scale;
        }
        return result;
    }

    /// <summary>
    /// Gray (1), gray + alpha (2), RGB (3) or RGBA (4) to gray (1) or RGB (3): alpha is dropped, gray is repeated
    /// into R, G and B, and RGB becomes gray as (77 R + 150 G + 29 B) >> 8 (the rule of the image decoder, so an IDX
    /// image and the same picture in a PNG give the same input).
    /// </summary>
    public static byte[] ConvertChannels(byte[] pixels, int count, int from, int to)
    {
        if (from is < 1 or > 4) throw new ArgumentOutOfRangeException(nameof(from), from, "1 to 4 channels");
        if (to is not (1 or 3)) throw new ArgumentOutOfRangeException(nameof(to), to, "1 or 3 channels");
        if (from == to) return pixels;
        var r = new byte[count * to];
        for (int p = 0; p < count; p++)
        {
            int s = p * from;
            if (to == 1)
                r[p] = from <= 2 ? pixels[s] : (byte)((pixels[s] * 77 + pixels[s + 1] * 150 + pixels[s + 2] * 29) >> 8);
            else if (from <= 2)
                r[p * 3] = r[p * 3 + 1] = r[p * 3 + 2] = pixels[s];
            else
            {
                r[p * 3] = pixels[s]; r[p * 3 + 1] = pixels[s + 1]; r[p * 3 + 2] = pixels[s + 2];
            }
        }
        return r;
    }

    /// <summary>
    /// Fits a <paramref name="w"/> x <paramref name="h"/> image to <paramref name="ow"/> x <paramref name="oh"/>
    /// (half-pixel centres, as OpenCV and TF2 do; the identity when the size already matches).
    /// <see cref="ResizeMode.Stretch"/> scales each axis on its own; <see cref="ResizeMode.CenterCrop"/> scales both
    /// by the larger of the two factors (the image's shorter side, relative to the model's, becomes the model's) and
    /// samples the centred window of the model's aspect ratio, in one step.
    /// </summary>
    public static float[] Resize(byte[] data, int w, int h, int c, int ow, int oh, ResizeMode mode, Interpolation interpolation)
    {
        double sx = (double)w / ow, sy = (double)h / oh, offsetX = 0, offsetY = 0;
        if (mode == ResizeMode.CenterCrop)
        {
            if ((long)ow * h >= (long)oh * w) sy = sx; // the width is the shorter side relative to the model: it fits exactly
            else sx = sy;
            offsetX = (w - ow * sx) / 2;
            offsetY = (h - oh * sy) / 2;
        }
        var r = new float[ow * oh * c];
        if (interpolation == Interpolation.Nearest)
        {
            for (int y = 0; y < oh; y++)
            {
                int iy = Math.Clamp((int)Math.Floor((y + 0.5) * sy + offsetY), 0, h - 1);
                for (int x = 0; x < ow; x++)
                {
                    int ix = Math.Clamp((int)Math.Floor((x + 0.5) * sx + offsetX), 0, w - 1);
                    for (int ch = 0; ch < c; ch++) r[(y * ow + x) * c + ch] = data[(iy * w + ix) * c + ch];
                }
            }
            return r;
        }
        for (int y = 0; y < oh; y++)
        {
            double fy = Math.Max(0, (y + 0.5) * sy - 0.5 + offsetY);
            int y0 = Math.Min((int)fy, h - 1), y1 = Math.Min(y0 + 1, h - 1);
            double wy = fy - y0;
            for (int x = 0; x < ow; x++)
            {
                double fx = Math.Max(0, (x + 0.5) * sx - 0.5 + offsetX);
                int x0 = Math.Min((int)fx, w - 1), x1 = Math.Min(x0 + 1, w - 1);
                double wx = fx - x0;
                for (int ch = 0; ch < c; ch++)
                {
                    double a = data[(y0 * w + x0) * c + ch], b = data[(y0 * w + x1) * c + ch];
                    double d = data[(y1 * w + x0) * c + ch], e = data[(y1 * w + x1) * c + ch];
                    r[(y * ow + x) * c + ch] = (float)((a * (1 - wx) + b * wx) * (1 - wy) + (d * (1 - wx) + e * wx) * wy);
                }
            }
        }
        return r;
    }
}
