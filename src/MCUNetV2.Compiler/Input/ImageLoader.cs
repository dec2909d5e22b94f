using MCUNetV2.Compiler.Diagnostics;
using MCUNetV2.Compiler.Graph;
using MCUNetV2.Compiler.Pipeline;
using StbImageSharp;

namespace MCUNetV2.Compiler.Input;

/// <summary>Turns an image file (PNG, JPEG, BMP, TGA, GIF) into the model's float input, NHWC, by <see cref="Preprocessing"/>.</summary>
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
        catch (Exception e) when (e is IOException or InvalidOperationException or ArgumentException or UnauthorizedAccessException or NotSupportedException)
        {
            throw new CompilerException(ErrorCodes.CalibrationUnreadable, $"cannot decode image '{path}': {e.Message}", path);
        }
        int channels = pre.Channels == ChannelOrder.Gray ? 1 : 3;
        if (shape.C != channels)
            throw new CompilerException(ErrorCodes.BadMetadata,
                $"the model takes {shape.C} input channels but ChannelOrder={pre.Channels} gives {channels}", path);
        var resized = ResizeBilinear(img.Data, img.Width, img.Height, channels, shape.W, shape.H);
        var result = new float[resized.Length];
        for (int i = 0; i < resized.Length; i++)
        {
            int c = i % channels;
            int src = pre.Channels == ChannelOrder.Bgr ? channels - 1 - c : c;
            float mean = pre.Mean[Math.Min(c, pre.Mean.Length - 1)], scale = pre.Scale[Math.Min(c, pre.Scale.Length - 1)];
            result[i] = (resized[i - c + src] - mean) * scale;
        }
        return result;
    }

    /// <summary>Bilinear resize with half-pixel centres (as OpenCV and TF2 do); identity when the size already matches.</summary>
    public static float[] ResizeBilinear(byte[] data, int w, int h, int c, int ow, int oh)
    {
        var r = new float[ow * oh * c];
        double sy = (double)h / oh, sx = (double)w / ow;
        for (int y = 0; y < oh; y++)
        {
            double fy = Math.Max(0, (y + 0.5) * sy - 0.5);
            int y0 = Math.Min((int)fy, h - 1), y1 = Math.Min(y0 + 1, h - 1);
            double wy = fy - y0;
            for (int x = 0; x < ow; x++)
            {
                double fx = Math.Max(0, (x + 0.5) * sx - 0.5);
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
