declare const PER_RANK = 4;
declare const RANKS = 2;
declare const IMAGE: number[];
declare const STEPS = 3;
declare const SGD_OPTIONS: {
    lr: number;
    momentum: number;
    weightDecay: number;
};
/** The shipped config of MoCo or SSQL_MoCo. */
declare function configFile(type?: string): string;
/** --opts overrides: a small projector, a fast-moving key encoder, and MoCo K (32 unless given). */
declare function overrides(k?: number): {
    key: string;
    value: number;
}[];
/** Step `step`'s global batch: { xq, xk } as float32 [RANKS*PER_RANK, ...IMAGE]. */
declare function globalViews(step: number): {
    xq: Float32Array<ArrayBufferLike>;
    xk: Float32Array<ArrayBufferLike>;
};
/** The rows `rows` of a float32 [N, ...IMAGE] array, concatenated. */
declare function imageRows(x: Float32Array, rows: readonly number[]): Float32Array<ArrayBuffer>;
export { configFile, PER_RANK, RANKS, IMAGE, STEPS, SGD_OPTIONS, overrides, globalViews, imageRows };
