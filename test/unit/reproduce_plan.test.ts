import { describe, expect, it } from "vitest";
import { reproduce } from "../../lib/cli/reproduce";
import { FMNIST_TRAIN, MIN_LINEAR_IMAGES, planFor, scaleFor, TARGET_EPOCHS } from "../../lib/reproduce/plan";

describe("reproduce plan", () => {
  it("turns images seen into epochs first, then a larger subset, then more epochs over the whole set", () => {
    expect(scaleFor(8 * 64, 64)).toEqual({ images: 512, epochs: 1 });
    expect(scaleFor(4 * 8 * 64, 64)).toEqual({ images: 512, epochs: 4 });
    expect(scaleFor(100_000, 64)).toEqual({ images: 12480, epochs: TARGET_EPOCHS });
    expect(scaleFor(20 * FMNIST_TRAIN, 64)).toEqual({ images: FMNIST_TRAIN, epochs: 20 });
    expect(scaleFor(10, 64)).toEqual({ images: 64, epochs: 1 });
  });

  it("fits the budget when nothing is at its floor, and grows with it", () => {
    const costs = { ssqlPerImage: 0.07, simsiamPerImage: 0.03, linearPerImage: 0.01, probeSeconds: 120 };
    const o = { batch: 64, settings: 7, classifierSeeds: 3 };
    const small = planFor(costs, { ...o, budgetSeconds: 3600 });
    const large = planFor(costs, { ...o, budgetSeconds: 9000 });
    expect(small.estimate.total).toBeLessThanOrEqual(3600);
    expect(large.estimate.total).toBeLessThanOrEqual(9000);
    expect(large.main.images * large.main.epochs).toBeGreaterThan(small.main.images * small.main.epochs);
    expect(large.linear.valImages).toBeGreaterThan(small.linear.valImages);
    expect(small.repeat.images).toBe(Math.floor(small.main.images / 4 / 64) * 64);
    expect(small.repeat.epochs).toBe(small.main.epochs);
    expect(planFor(costs, { ...o, budgetSeconds: 1 }).linear.valImages).toBe(MIN_LINEAR_IMAGES);
  });

  it("charges the main runs' kNN monitor to the pretraining share", () => {
    const costs = { ssqlPerImage: 0.07, simsiamPerImage: 0.03, linearPerImage: 0.01, probeSeconds: 120 };
    const o = { batch: 64, settings: 7, classifierSeeds: 3, budgetSeconds: 9000 };
    const without = planFor(costs, o);
    const knn = { knnPerImage: 0.02, knnSettings: 2, knnQueries: 384 };
    const withKnn = planFor({ ...costs, ...knn }, o);
    expect(without.estimate.knn).toBe(0);
    expect(withKnn.main.images * withKnn.main.epochs).toBeLessThan(without.main.images * without.main.epochs);
    const { images, epochs } = withKnn.main;
    // Per epoch both methods embed the subset and the queries once per setting.
    expect(withKnn.estimate.knn).toBeCloseTo(epochs * 2 * 2 * (images + 384) * 0.02, 6);
    expect(withKnn.estimate.total).toBeLessThanOrEqual(o.budgetSeconds);
    expect(withKnn.estimate.total).toBeCloseTo(120 + withKnn.estimate.pretrainMain + withKnn.estimate.knn + withKnn.estimate.pretrainRepeat + withKnn.estimate.linear, 6);
  });

  it("pays each linear command's own start once, not per image", () => {
    const costs = { ssqlPerImage: 0.07, simsiamPerImage: 0.03, linearPerImage: 0.005, probeSeconds: 120 };
    const o = { batch: 64, settings: 7, classifierSeeds: 3, budgetSeconds: 9000 };
    const free = planFor(costs, o);
    const paid = planFor({ ...costs, linearProcessSeconds: 30 }, o);
    expect(paid.linear.valImages).toBeLessThan(free.linear.valImages);
    // 10 commands (3 classifier seeds x 2 methods, 4 repeats), 70 settings of train + val images each.
    expect(paid.estimate.linear).toBeCloseTo(10 * 30 + 70 * 2 * paid.linear.valImages * 0.005, 6);
    expect(paid.estimate.total).toBeLessThanOrEqual(o.budgetSeconds);
  });

  it("refuses a measurement or a budget it cannot use", () => {
    const o = { batch: 64, settings: 7, classifierSeeds: 3, budgetSeconds: 60 };
    expect(() => planFor({ ssqlPerImage: Number.NaN, simsiamPerImage: 0.1, linearPerImage: 0.1, probeSeconds: 1 }, o)).toThrow(/ssqlPerImage is NaN/);
    expect(() => planFor({ ssqlPerImage: 0.1, simsiamPerImage: 0.1, linearPerImage: 0.1, probeSeconds: 1 }, { ...o, budgetSeconds: 0 })).toThrow(/budget must be positive/);
  });
});

describe("reproduce arguments", () => {
  it("names the bad option and value", async () => {
    await expect(reproduce(["--budget-minutes", "soon"])).rejects.toThrow(/--budget-minutes expects a positive number, got 'soon'/);
    await expect(reproduce(["--device", "tpu"])).rejects.toThrow(/--device expects cpu, cuda or cuda:N, got 'tpu'/);
    await expect(reproduce(["--classifier-seeds", "0"])).rejects.toThrow(/--classifier-seeds expects a positive integer, got '0'/);
    await expect(reproduce(["--bits", "fp,9x"])).rejects.toThrow(/9x/);
    await expect(reproduce(["--bits", "fp,fp"])).rejects.toThrow(/lists a setting twice/);
    await expect(reproduce(["--budget"])).rejects.toThrow(/Unknown option/);
    await expect(reproduce(["--opts", "A"])).rejects.toThrow(/KEY VALUE pairs/);
  });
});
