import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";
import jpeg from "jpeg-js";
import { PNG } from "pngjs";
import { afterAll, describe, expect, it } from "vitest";
import { FMNIST_SYSTEM_DIR, openDataset, resolveDataRoot } from "../../lib/data/datasets";
import type { InMemoryDataset } from "../../lib/data/dataset";
import { ImageFolderDataset } from "../../lib/data/image_folder";
import { NdArray, unpickleNumpy as unpickle } from "../../lib/data/numpy_pickle";

const FIXTURES = path.join(__dirname, "../fixtures/cifar");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ssql-readers-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
// Only the given root: no $SSQL_DATA_DIR, and ./data, ./cache relative to an empty folder.
const only = (root: string) => ({ root, envDir: undefined, cwd: tmp });

/** generate_cifar.py's pixel formula, read back in HWC order. */
function cifarPixel(f: number, i: number, c: number, y: number, x: number): number {
  return (37 * f + 101 * i + 53 * c + 7 * y + 3 * x + ((x * y) % 11)) % 256;
}
function expectCifarImages(ds: InMemoryDataset, files: { f: number; n: number }[]) {
  const px = ds.images.toArraySync();
  let img = 0;
  for (const { f, n } of files)
    for (let i = 0; i < n; i++, img++)
      for (const [y, x] of [[0, 0], [5, 17], [31, 31], [20, 3]])
        for (let c = 0; c < 3; c++) expect(px[((img * 32 + y) * 32 + x) * 3 + c]).toBe(cifarPixel(f, i, c, y, x));
}

function copyDir(src: string, dst: string) {
  fs.cpSync(src, dst, { recursive: true });
}

describe("CIFAR in torchvision's python-pickle layout", () => {
  const root = path.join(tmp, "pickles");
  copyDir(FIXTURES, root);

  it("reads CIFAR-10 train (Python 2 protocol-2 and Python 3 protocol-3 batches) as NHWC uint8", async () => {
    const ds = (await openDataset("cifar10", "train", only(root))) as InMemoryDataset;
    expect(ds.images.shape).toEqual([10, 32, 32, 3]);
    expect(Array.from(ds.labels)).toEqual([0, 5, 3, 8, 6, 1, 9, 4, 2, 7]);
    expect(ds.classes[0]).toBe("airplane");
    expect(ds.classes[9]).toBe("truck");
    expectCifarImages(ds, [0, 1, 2, 3, 4].map((f) => ({ f, n: 2 })));
    ds.dispose();
  });

  it("reads CIFAR-10 validation from test_batch and CIFAR-100 with fine_labels", async () => {
    const val = (await openDataset("cifar10", "validation", only(root))) as InMemoryDataset;
    expect(Array.from(val.labels)).toEqual([5, 0]);
    expectCifarImages(val, [{ f: 5, n: 2 }]);
    const c100 = (await openDataset("cifar100", "train", only(root))) as InMemoryDataset;
    expect(Array.from(c100.labels)).toEqual([18, 23, 28]);
    expect(c100.classes.length).toBe(100);
    expectCifarImages(c100, [{ f: 6, n: 3 }]);
    const c100v = (await openDataset("cifar100", "validation", only(root))) as InMemoryDataset;
    expect(Array.from(c100v.labels)).toEqual([21, 26]);
    for (const d of [val, c100, c100v]) d.dispose();
  });

  it("names the file when a pickle is truncated", async () => {
    const bad = path.join(tmp, "truncated");
    copyDir(FIXTURES, bad);
    const file = path.join(bad, "cifar-10-batches-py", "data_batch_2");
    fs.truncateSync(file, 3000);
    await expect(openDataset("cifar10", "train", only(bad))).rejects.toThrow(new RegExp(`truncated.*${file.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}`));
  });
});

describe("CIFAR binary release layout", () => {
  const root = path.join(tmp, "binary");
  const writeBin = (file: string, f: number, n: number, classes: number) => {
    const labelBytes = classes === 10 ? 1 : 2;
    const buf = Buffer.alloc(n * (labelBytes + 3072));
    for (let i = 0; i < n; i++) {
      const o = i * (labelBytes + 3072);
      const label = (3 * f + 5 * i) % classes;
      if (labelBytes === 2) buf[o] = Math.floor(label / 5);
      buf[o + labelBytes - 1] = label;
      for (let c = 0; c < 3; c++) for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) buf[o + labelBytes + c * 1024 + y * 32 + x] = cifarPixel(f, i, c, y, x);
    }
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, buf);
  };
  for (let f = 0; f < 5; f++) writeBin(path.join(root, "cifar-10-batches-bin", `data_batch_${f + 1}.bin`), f, 2, 10);
  writeBin(path.join(root, "cifar-10-batches-bin", "test_batch.bin"), 5, 2, 10);
  writeBin(path.join(root, "cifar-100-binary", "train.bin"), 6, 3, 100);
  writeBin(path.join(root, "cifar-100-binary", "test.bin"), 7, 2, 100);

  it("reads CIFAR-10 and CIFAR-100 (fine label) records", async () => {
    const loc = resolveDataRoot("cifar10", only(root));
    expect(loc.layout).toBe("binary");
    const c10 = (await openDataset("cifar10", "train", only(root))) as InMemoryDataset;
    expect(Array.from(c10.labels)).toEqual([0, 5, 3, 8, 6, 1, 9, 4, 2, 7]);
    expectCifarImages(c10, [0, 1, 2, 3, 4].map((f) => ({ f, n: 2 })));
    const c100 = (await openDataset("cifar100", "train", only(root))) as InMemoryDataset;
    expect(Array.from(c100.labels)).toEqual([18, 23, 28]);
    expectCifarImages(c100, [{ f: 6, n: 3 }]);
    c10.dispose();
    c100.dispose();
  });

  it("names the file when a record is cut short", async () => {
    const file = path.join(root, "cifar-10-batches-bin", "test_batch.bin");
    fs.truncateSync(file, 3073 + 100);
    await expect(openDataset("cifar10", "validation", only(root))).rejects.toThrow(`CIFAR file is truncated or corrupt: ${file}`);
  });
});

describe("restricted pickle reader", () => {
  const op = (s: string) => Buffer.from(s, "latin1");
  it("refuses any other global or call, and object-building opcodes", () => {
    expect(() => unpickle(op("\x80\x02cos\nsystem\nX\x02\x00\x00\x00lsR."))).toThrow(/refusing global 'os.system'/);
    expect(() => unpickle(op("\x80\x04\x8c\x08builtins\x8c\x04eval\x93."))).toThrow(/refusing global 'builtins.eval'/);
    expect(() => unpickle(op("\x80\x02cnumpy\ndtype\nX\x02\x00\x00\x00f4\x89\x88\x87R."))).toThrow(/only uint8/);
    expect(() => unpickle(op("\x80\x02cnumpy\nndarray\n)\x81."))).toThrow(/unsupported or unsafe pickle opcode 0x81/);
  });
  it("reads dicts, lists, tuples, ints, floats and strings", () => {
    // pickle.dumps({'a': [1, -2, 70000, 1.5], b'k': ('x', None, True)}, protocol=2) from Python 3
    const bytes = op("\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01]q\x02(K\x01J\xfe\xff\xff\xffJp\x11\x01\x00G?\xf8\x00\x00\x00\x00\x00\x00ec_codecs\nencode\nq\x03X\x01\x00\x00\x00kq\x04X\x06\x00\x00\x00latin1q\x05\x86q\x06Rq\x07X\x01\x00\x00\x00xq\x08N\x88\x87q\tu.");
    const d = unpickle(bytes) as Map<string, unknown>;
    expect(d.get("a")).toEqual([1, -2, 70000, 1.5]);
    const t = d.get("k") as { items: unknown[] };
    expect(t.items).toEqual(["x", null, true]);
  });
  it("decodes the fixture's numpy array through _reconstruct", () => {
    const d = unpickle(fs.readFileSync(path.join(FIXTURES, "cifar-10-batches-py", "data_batch_1"))) as Map<string, unknown>;
    const a = d.get("data") as NdArray;
    expect(a).toBeInstanceOf(NdArray);
    expect(a.shape).toEqual([2, 3072]);
    expect(a.data[1024 + 32 * 5 + 17]).toBe(cifarPixel(0, 0, 1, 5, 17));
  });
});

describe("dataset roots", () => {
  it("says which paths were tried, the expected layout and how to get the data", () => {
    const missing = path.join(tmp, "nowhere");
    let msg = "";
    try {
      resolveDataRoot("cifar10", only(missing));
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toContain(missing);
    expect(msg).toContain(path.join(tmp, "data"));
    expect(msg).toContain(path.join(tmp, "cache"));
    expect(msg).toContain("cifar-10-batches-py/{data_batch_1..5, test_batch}");
    expect(msg).toContain("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz");
    expect(() => resolveDataRoot("imagenet", only(missing))).toThrow(/imagenet\/\{train,val\}\/<class>/);
    expect(() => resolveDataRoot("mnist", only(missing))).toThrow(/unknown dataset 'mnist'/);
  });

  it("tries the explicit root, then $SSQL_DATA_DIR, then ./data", () => {
    const a = path.join(tmp, "rootA"), b = path.join(tmp, "rootB");
    copyDir(FIXTURES, a);
    copyDir(FIXTURES, b);
    expect(resolveDataRoot("cifar10", { root: a, envDir: b, cwd: tmp }).root).toBe(a);
    expect(resolveDataRoot("cifar10", { root: path.join(tmp, "none"), envDir: b, cwd: tmp }).root).toBe(b);
    copyDir(FIXTURES, path.join(tmp, "data"));
    expect(resolveDataRoot("cifar10", { envDir: undefined, cwd: tmp }).dir).toBe(path.join(tmp, "data", "cifar-10-batches-py"));
    fs.rmSync(path.join(tmp, "data"), { recursive: true });
  });
});

describe("Fashion-MNIST", () => {
  const idx = (magic: number, dims: number[], data: Uint8Array) => {
    const head = Buffer.alloc(4 + 4 * dims.length);
    head.writeUInt32BE(magic, 0);
    dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
    return zlib.gzipSync(Buffer.concat([head, data]));
  };

  it("pads 28x28 to 32x32 and repeats the gray channel", async () => {
    const dir = path.join(tmp, "fm", "fashion-mnist");
    fs.mkdirSync(dir, { recursive: true });
    const img = Uint8Array.from({ length: 2 * 28 * 28 }, (_, i) => (i * 7) % 251);
    fs.writeFileSync(path.join(dir, "t10k-images-idx3-ubyte.gz"), idx(0x803, [2, 28, 28], img));
    fs.writeFileSync(path.join(dir, "t10k-labels-idx1-ubyte.gz"), idx(0x801, [2], Uint8Array.from([9, 3])));
    const ds = (await openDataset("fmnist", "validation", only(path.join(tmp, "fm")))) as InMemoryDataset;
    expect(ds.images.shape).toEqual([2, 32, 32, 3]);
    expect(Array.from(ds.labels)).toEqual([9, 3]);
    expect(ds.classes[9]).toBe("Ankle boot");
    const px = ds.images.toArraySync();
    const at = (n: number, y: number, x: number, c: number) => px[((n * 32 + y) * 32 + x) * 3 + c];
    for (const [y, x] of [[0, 0], [1, 31], [31, 5], [30, 30]]) expect(at(1, y, x, 0)).toBe(0);
    for (const [y, x] of [[0, 0], [13, 27], [27, 27]]) for (let c = 0; c < 3; c++) expect(at(1, y + 2, x + 2, c)).toBe(img[784 + y * 28 + x]);
    ds.dispose();
  });

  const haveSystemCopy = fs.existsSync(FMNIST_SYSTEM_DIR);
  if (!haveSystemCopy) console.log(`skipped: the system Fashion-MNIST copy is not installed (${FMNIST_SYSTEM_DIR}; apt install dataset-fashion-mnist)`);
  it.skipIf(!haveSystemCopy)("reads the system copy as the built-in default", async () => {
    expect(resolveDataRoot("fmnist", only(path.join(tmp, "none"))).dir).toBe(FMNIST_SYSTEM_DIR);
    const ds = (await openDataset("fmnist", "validation", only(path.join(tmp, "none")))) as InMemoryDataset;
    expect(ds.length).toBe(10000);
    const counts = new Array(10).fill(0);
    for (const l of ds.labels) counts[l]++;
    expect(counts).toEqual(new Array(10).fill(1000));
    ds.dispose();
  });

  it("names a truncated idx file", async () => {
    const dir = path.join(tmp, "fmbad");
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "t10k-images-idx3-ubyte.gz"), idx(0x803, [2, 28, 28], new Uint8Array(100)));
    fs.writeFileSync(path.join(dir, "t10k-labels-idx1-ubyte.gz"), idx(0x801, [2], Uint8Array.from([1, 2])));
    await expect(openDataset("fmnist", "validation", only(dir))).rejects.toThrow(/t10k-images-idx3-ubyte.gz is truncated/);
  });
});

describe("ImageFolder with JPEG and PNG", () => {
  const root = path.join(tmp, "folder", "pets", "train");
  const W = 7, H = 5;
  const rgba = Buffer.alloc(W * H * 4);
  for (let i = 0; i < W * H; i++) rgba.set([(i * 37) % 256, 200 - i * 3, (i * i) % 256, (i * 11) % 256], i * 4);
  const png = (colorType: 0 | 2 | 6) => {
    const p = new PNG({ width: W, height: H });
    rgba.copy(p.data);
    return PNG.sync.write(p, { colorType });
  };
  const smooth = Buffer.alloc(16 * 12 * 4);
  for (let y = 0; y < 12; y++) for (let x = 0; x < 16; x++) smooth.set([x * 15, y * 20, 128, 255], (y * 16 + x) * 4);
  const jpg = jpeg.encode({ data: smooth, width: 16, height: 12 }, 95).data;
  const files: Record<string, Buffer> = {
    "dog/b.png": png(2),
    "dog/a.jpg": jpg,
    "dog/sub/c.PNG": png(0),
    "dog/notes.txt": Buffer.from("not an image"),
    "cat/z.png": png(6),
    "cat/broken.jpg": Buffer.from("garbage that is not a jpeg"),
    "cat/cut.jpeg": jpg.subarray(0, Math.floor(jpg.length / 2)),
    "ant/x.jpg": jpg,
  };
  for (const [name, data] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
    fs.writeFileSync(path.join(root, name), data);
  }
  const rgbOf = (decodedRgba: Uint8Array | Buffer) => Uint8Array.from({ length: (decodedRgba.length / 4) * 3 }, (_, i) => decodedRgba[Math.floor(i / 3) * 4 + (i % 3)]);

  it("lists classes and files as torchvision sorts them", async () => {
    const ds = await openDataset("pets", "train", only(path.join(tmp, "folder")));
    expect(ds.classes).toEqual(["ant", "cat", "dog"]);
    const f = (ds as ImageFolderDataset).files.map((p) => path.relative(root, p));
    expect(f).toEqual(["ant/x.jpg", "cat/broken.jpg", "cat/cut.jpeg", "cat/z.png", "dog/a.jpg", "dog/b.png", "dog/sub/c.PNG"]);
    expect(Array.from(ds.labels)).toEqual([0, 1, 1, 1, 2, 2, 2]);
  });

  it("decodes PNG exactly and JPEG close to an independent decoder", async () => {
    const ds = await ImageFolderDataset.open("pets", "train", root, "error");
    const batch = await ds.load(Int32Array.from([3, 5, 6, 4]));
    const imgs = batch.images as import("../../lib/tensor/tensor").Tensor[];
    expect(batch.sizes).toEqual([[H, W], [H, W], [H, W], [12, 16]]);
    expect(Array.from(batch.labels)).toEqual([1, 2, 2, 2]);
    // RGBA PNG: alpha dropped (PIL's convert("RGB")); RGB PNG; gray PNG repeated to 3 channels.
    for (const [k, ct] of [[0, 6], [1, 2], [2, 0]] as const)
      expect(Array.from(imgs[k].toArraySync())).toEqual(Array.from(rgbOf(PNG.sync.read(png(ct)).data)));
    const ref = rgbOf(jpeg.decode(jpg, { useTArray: true }).data);
    const got = imgs[3].toArraySync();
    let worst = 0;
    for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(got[i] - ref[i]));
    expect(worst).toBeLessThanOrEqual(3);
    batch.dispose();
  });

  it("fails on a corrupt or truncated file by default, naming it", async () => {
    const ds = await ImageFolderDataset.open("pets", "train", root, "error");
    await expect(ds.load(Int32Array.from([0, 1]))).rejects.toThrow(/broken\.jpg: not a JPEG or PNG image/);
    await expect(ds.load(Int32Array.from([2]))).rejects.toThrow(/cut\.jpeg: corrupt JPEG/);
  });

  it("skips and counts undecodable files when asked", async () => {
    const ds = await openDataset("pets", "train", { ...only(path.join(tmp, "folder")), onCorrupt: "skip" });
    const batch = await ds.load(Int32Array.from([0, 1, 2, 3]));
    expect(batch.skipped.map((p) => path.basename(p))).toEqual(["broken.jpg", "cut.jpeg"]);
    expect(Array.from(batch.labels)).toEqual([0, 1]);
    expect(Array.from(batch.src)).toEqual([0, 1]);
    expect((ds as ImageFolderDataset).skippedFiles.size).toBe(2);
    batch.dispose();
  });

  it("leaves out torchvision's other image extensions (WebP, BMP, TIFF, ...), counted and explained", async () => {
    const r = path.join(tmp, "folder3", "pets", "train");
    for (const f of ["dog/a.png", "dog/b.webp", "dog/c.BMP", "dog/d.tiff", "cat/e.png", "cat/f.webp"]) {
      fs.mkdirSync(path.dirname(path.join(r, f)), { recursive: true });
      fs.writeFileSync(path.join(r, f), png(2));
    }
    const ds = await ImageFolderDataset.open("pets", "train", r, "error");
    expect(ds.files.map((p) => path.relative(r, p))).toEqual(["cat/e.png", "dog/a.png"]);
    expect(Object.fromEntries(ds.leftOut)).toEqual({ ".webp": 2, ".bmp": 1, ".tiff": 1 });
    fs.rmSync(path.join(r, "cat", "e.png"));
    await expect(ImageFolderDataset.open("pets", "train", r, "error")).rejects.toThrow(
      /no JPEG or PNG image for the classes cat .*\(left out 2 \.webp, 1 \.bmp, 1 \.tiff: only JPEG and PNG are decoded/,
    );
  });

  it("errors on a class folder without images and on a missing split", async () => {
    const r = path.join(tmp, "folder2", "dtd", "split1", "train");
    fs.mkdirSync(path.join(r, "empty"), { recursive: true });
    fs.mkdirSync(path.join(r, "full"), { recursive: true });
    fs.writeFileSync(path.join(r, "full", "a.png"), png(2));
    await expect(openDataset("dtd", "train", only(path.join(tmp, "folder2")))).rejects.toThrow(/no JPEG or PNG image for the classes empty/);
    await expect(openDataset("dtd", "validation", only(path.join(tmp, "folder2")))).rejects.toThrow(/split folder .*split1\/val is missing/);
  });
});
