import { describe, expect, it } from "vitest";
import { SGD } from "../../lib/optim/sgd";
import { tensor } from "../../lib/tensor/tensor";
import { type FixtureCase, arrayOf, expectClose, loadFixture, tensorOf } from "../helpers/fixtures";

function setup(c: FixtureCase) {
  const p1 = tensorOf(c, "p1_init", true);
  const p2 = tensorOf(c, "p2_init", true);
  const { lr, momentum, dampening, weightDecay, nesterov } = c.params;
  const opt = new SGD([{ params: [p1] }, { params: [p2], lr: lr[1] }], { lr: lr[0], momentum, dampening, weightDecay, nesterov });
  const step = (o: SGD, k: number) => {
    p1.grad = tensorOf(c, `g1_${k}`);
    p2.grad = tensorOf(c, `g2_${k}`);
    o.step();
    o.zeroGrad();
  };
  return { p1, p2, opt, step };
}

describe("SGD against torch.optim.SGD", () => {
  for (const c of loadFixture("sgd")) {
    it(`${c.name} (${JSON.stringify(c.params)})`, () => {
      const { p1, p2, opt, step } = setup(c);
      for (let k = 0; k < c.params.steps; k++) {
        step(opt, k);
        expectClose(`step ${k} p1`, p1, arrayOf(c, `p1_${k}`), 1e-6);
        expectClose(`step ${k} p2`, p2, arrayOf(c, `p2_${k}`), 1e-6);
      }
    });

    it(`${c.name}: resumes from a state dict`, () => {
      const { p1, p2, opt, step } = setup(c);
      step(opt, 0);
      const sd = opt.stateDict();
      const resumed = new SGD([{ params: [p1] }, { params: [p2] }], { lr: 1 });
      resumed.loadStateDict(sd);
      expect(resumed.paramGroups[1].lr).toBe(c.params.lr[1]);
      for (let k = 1; k < c.params.steps; k++) step(resumed, k);
      expectClose("p1", p1, arrayOf(c, `p1_${c.params.steps - 1}`), 1e-6);
      expectClose("p2", p2, arrayOf(c, `p2_${c.params.steps - 1}`), 1e-6);
      expect(Object.keys(sd.state).length).toBe(c.params.momentum > 0 ? 2 : 0);
    });
  }

  it("skips parameters without a gradient and rejects Nesterov without momentum", () => {
    const p = tensor([1, 2], [2]).keep();
    p.requiresGrad = true;
    new SGD([p], { lr: 0.1, momentum: 0.9 }).step();
    expect(Array.from(p.toArraySync())).toEqual([1, 2]);
    expect(() => new SGD([p], { lr: 0.1, nesterov: true })).toThrow(RangeError);
  });
});
