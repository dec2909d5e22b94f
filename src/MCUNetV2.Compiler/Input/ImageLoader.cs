using MCUNetV2.Compiler.Diagnostics;
using MCUNetV2.Compiler.Graph;
using MCUNetV2.Compiler.Pipeline;
using StbImageSharp;

namespace MCUNetV2.Compiler.Input;

/// <summary>
/// Turns an image file (PNG, JPEG, BMP; the decoder also reads TGA and GIF) into the model's float input, NHWC, by
/// <see cref="Preprocessing"/> (<see cref="ImagePreprocessing"/>).
/// </summary>
public static class ImageLoader
{
    public static float[] Load(string path, Preprocessing pre, TensorShape shape)
    {
        ImageResult img;
        try
        {
            using var stream = File.OpenRead(path);
            img = ImageResult.FromStream(stream, pre.Channels == ChannelOrder.Gray ? ColorComponents.Grey : ColorComponents.RedGreenBlue);
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or ArgumentException or UnauthorizedAccessException or NotSupportedException
                                      or IndexOutOfRangeException or OverflowException)
        {
            // the decoder reports some malformed files only by failing inside itself
            throw new CompilerException(ErrorCodes.CalibrationUnreadable, $"cannot decode image '{path}': {e.Message}", path);
        }
        if (img.Width <= 0 || img.Height <= 0 || img.Data == null)
            throw new CompilerException(ErrorCodes.CalibrationUnreadable, $"cannot decode image '{path}': it holds no pixels", path);
        return ImagePreprocessing.ToModelInput(img.Data, img.Width, img.Height, ImagePreprocessing.ChannelCount(pre.Channels), pre, shape, path);
    }

    /// <summary>Bilinear resize with half-pixel centres (as OpenCV and TF2 do); identity when the size already matches.</summary>
    public static float[] ResizeBilinear(byte[] data, int w, int h, int c, int ow, int oh) =>
        ImagePreprocessing.Resize(data, w, h, c, ow, oh, ResizeMode.Stretch, Interpolation.Bilinear);
}
