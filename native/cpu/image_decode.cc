// decodeImages: reads and decodes JPEG (libjpeg-turbo) and PNG (libpng) files to uint8 RGB [H, W, 3] on the
// data pool, off the main thread. A file that cannot be read or decoded yields its error message instead of a
// tensor, so the caller can skip it or fail.
#include <csetjmp>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "../core/binding.h"
#include "data_pool.h"

// After <cstdio>: jpeglib.h needs size_t and FILE declared first.
#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

namespace ssql {
namespace {

constexpr int64_t kMaxPixels = int64_t(1) << 28;

struct Decoded {
  int h = 0, w = 0;
  std::vector<uint8_t> rgb;
};

bool readFile(const std::string& path, std::vector<uint8_t>& out, std::string& err) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) {
    err = "cannot open file";
    return false;
  }
  std::streamsize n = f.tellg();
  f.seekg(0);
  out.resize(static_cast<size_t>(std::max<std::streamsize>(n, 0)));
  if (n > 0 && !f.read(reinterpret_cast<char*>(out.data()), n)) {
    err = "cannot read file";
    return false;
  }
  return true;
}

struct JpegError {
  jpeg_error_mgr pub;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void jpegErrorExit(j_common_ptr c) {
  auto* e = reinterpret_cast<JpegError*>(c->err);
  (*c->err->format_message)(c, e->message);
  std::longjmp(e->jump, 1);
}

// Warnings are ignored (PIL loads such files too), except a premature end of data: PIL refuses truncated images.
void jpegEmitMessage(j_common_ptr c, int level) {
  if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) jpegErrorExit(c);
}

// Kept free of C++ objects with destructors between setjmp and longjmp.
bool decodeJpeg(const uint8_t* data, size_t n, Decoded& out, std::string& err) {
  jpeg_decompress_struct cinfo;
  JpegError jerr;
  unsigned char* volatile buf = nullptr;
  cinfo.err = jpeg_std_error(&jerr.pub);
  jerr.pub.error_exit = jpegErrorExit;
  jerr.pub.emit_message = jpegEmitMessage;
  jerr.message[0] = 0;
  if (setjmp(jerr.jump)) {
    jpeg_destroy_decompress(&cinfo);
    std::free(buf);
    err = std::string("corrupt JPEG: ") + jerr.message;
    return false;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(n));
  jpeg_read_header(&cinfo, TRUE);
  const bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
  jpeg_start_decompress(&cinfo);
  const int w = static_cast<int>(cinfo.output_width), h = static_cast<int>(cinfo.output_height);
  const int comps = cinfo.output_components;
  if (static_cast<int64_t>(w) * h > kMaxPixels) {
    std::snprintf(jerr.message, sizeof jerr.message, "image of %dx%d pixels is too large", w, h);
    std::longjmp(jerr.jump, 1);
  }
  buf = static_cast<unsigned char*>(std::malloc(static_cast<size_t>(w) * h * comps));
  if (!buf) {
    std::snprintf(jerr.message, sizeof jerr.message, "out of memory");
    std::longjmp(jerr.jump, 1);
  }
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = buf + static_cast<size_t>(cinfo.output_scanline) * w * comps;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  const bool adobeInverted = cmyk && cinfo.saw_Adobe_marker;
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);

  out.h = h;
  out.w = w;
  out.rgb.resize(static_cast<size_t>(w) * h * 3);
  if (!cmyk) {
    std::memcpy(out.rgb.data(), buf, out.rgb.size());
  } else {
    // PIL's CMYK -> RGB: channel = (255 - c) * (255 - k) / 255; Adobe files store inverted CMYK.
    for (size_t i = 0, np = static_cast<size_t>(w) * h; i < np; ++i) {
      const uint8_t* p = buf + 4 * i;
      int k = adobeInverted ? p[3] : 255 - p[3];
      for (int ch = 0; ch < 3; ++ch) {
        int c = adobeInverted ? p[ch] : 255 - p[ch];
        int t = c * k + 128;
        out.rgb[3 * i + ch] = static_cast<uint8_t>((t + (t >> 8)) >> 8);
      }
    }
  }
  std::free(buf);
  return true;
}

bool decodePng(const uint8_t* data, size_t n, Decoded& out, std::string& err) {
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&img, data, n)) {
    err = std::string("corrupt PNG: ") + img.message;
    return false;
  }
  if (static_cast<int64_t>(img.width) * img.height > kMaxPixels) {
    png_image_free(&img);
    err = "image of " + std::to_string(img.width) + "x" + std::to_string(img.height) + " pixels is too large";
    return false;
  }
  // RGBA, then drop alpha: PIL's convert("RGB") discards it rather than compositing.
  img.format = PNG_FORMAT_RGBA;
  std::vector<uint8_t> rgba(PNG_IMAGE_SIZE(img));
  if (!png_image_finish_read(&img, nullptr, rgba.data(), 0, nullptr)) {
    err = std::string("corrupt PNG: ") + img.message;
    png_image_free(&img);
    return false;
  }
  out.w = static_cast<int>(img.width);
  out.h = static_cast<int>(img.height);
  const size_t np = static_cast<size_t>(out.w) * out.h;
  out.rgb.resize(np * 3);
  for (size_t i = 0; i < np; ++i) {
    out.rgb[3 * i] = rgba[4 * i];
    out.rgb[3 * i + 1] = rgba[4 * i + 1];
    out.rgb[3 * i + 2] = rgba[4 * i + 2];
  }
  return true;
}

bool decodeFile(const std::string& path, Decoded& out, std::string& err) {
  std::vector<uint8_t> bytes;
  if (!readFile(path, bytes, err)) return false;
  static const uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (bytes.size() >= 3 && bytes[0] == 0xff && bytes[1] == 0xd8 && bytes[2] == 0xff)
    return decodeJpeg(bytes.data(), bytes.size(), out, err);
  if (bytes.size() >= 8 && std::memcmp(bytes.data(), kPng, 8) == 0) return decodePng(bytes.data(), bytes.size(), out, err);
  err = bytes.empty() ? "empty file" : "not a JPEG or PNG image";
  return false;
}

struct DecodeJob {
  std::vector<std::string> paths;
  std::vector<TensorPtr> images;  // null where decoding failed
  std::vector<std::string> errors;
};

class DecodeWorker : public Napi::AsyncWorker {
 public:
  DecodeWorker(Napi::Env env, std::vector<std::string> paths)
      : Napi::AsyncWorker(env, "ssql.decodeImages"), deferred_(Napi::Promise::Deferred::New(env)) {
    job_.paths = std::move(paths);
    job_.images.resize(job_.paths.size());
    job_.errors.resize(job_.paths.size());
  }
  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      dataParallelFor(static_cast<int64_t>(job_.paths.size()), [this](int64_t i) {
        Decoded d;
        std::string err;
        if (!decodeFile(job_.paths[i], d, err)) {
          job_.errors[i] = err;
          return;
        }
        auto t = empty(DType::U8, {d.h, d.w, 3});
        std::memcpy(t->storage->data, d.rgb.data(), d.rgb.size());
        job_.images[i] = t;
      });
    } catch (const std::exception& e) {
      SetError(std::string("decodeImages(): ") + e.what());
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    auto arr = Napi::Array::New(env, job_.paths.size());
    for (size_t i = 0; i < job_.paths.size(); ++i)
      arr.Set(static_cast<uint32_t>(i), job_.images[i] ? wrap(env, job_.images[i]) : Napi::String::New(env, job_.errors[i]));
    deferred_.Resolve(arr);
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  DecodeJob job_;
};

}  // namespace
}  // namespace ssql

// decodeImages(paths) -> Promise<(tensor | string)[]>: uint8 [H, W, 3] RGB per file, or why it failed.
SSQL_OP(decodeImages) {
  auto v = a.at(0, "paths");
  if (!v.IsArray()) throw ssql::TypeError(a.where(0, "paths") + " must be an array of strings");
  auto arr = v.As<Napi::Array>();
  std::vector<std::string> paths;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value e = arr.Get(i);
    if (!e.IsString()) throw ssql::TypeError(a.where(0, "paths") + " must be an array of strings");
    paths.push_back(e.As<Napi::String>().Utf8Value());
  }
  auto* worker = new ssql::DecodeWorker(a.env(), std::move(paths));
  Napi::Promise p = worker->promise();
  worker->Queue();
  return p;
}
