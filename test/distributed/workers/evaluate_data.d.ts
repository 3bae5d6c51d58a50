declare const CLASSES = 10;
declare const BATCH = 32;
/** Set sizes: 4 batches (rank 0 gets 64 images, rank 1 36), one batch (rank 1 gets none), and an empty set. */
declare const SIZES: number[];
declare function evalSet(n: number): {
    logits: Float32Array<ArrayBuffer>;
    labels: Int32Array<ArrayBuffer>;
};
export { CLASSES, BATCH, SIZES, evalSet };
