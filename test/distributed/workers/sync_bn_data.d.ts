declare function batch(): {
    shape: number[];
    x: Float32Array<ArrayBuffer>;
    g: Float32Array<ArrayBufferLike>;
    weight: Float32Array<ArrayBuffer>;
    bias: Float32Array<ArrayBuffer>;
};
export { batch };
