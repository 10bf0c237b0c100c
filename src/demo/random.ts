/**
 * Seeded randomness for demo data. Every (seed, user, month) has its own stream, derived by hashing, so a
 * month's payments never depend on how many months or users were asked for: more months or more users only
 * add rows. No Math.random anywhere.
 */

/** A 32-bit mix (the splitmix32 finaliser): nearby inputs give unrelated outputs. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x21f0aaad);
  x = Math.imul(x ^ (x >>> 15), 0x735a2d97);
  return (x ^ (x >>> 15)) >>> 0;
}

/** A stream key from the seed (any safe integer) and a path of small integers. */
export function streamKey(seed: number, ...path: number[]): number {
  let h = mix32((seed % 0x100000000) ^ 0x5eed5eed);
  h = mix32(h ^ Math.floor(seed / 0x100000000));
  for (const p of path) h = mix32((h + Math.imul(p + 1, 0x9e3779b9)) >>> 0);
  return h;
}

/** A small, fast generator (a Weyl sequence through mix32): uniform doubles in (0, 1). */
export class Rng {
  private state: number;
  constructor(key: number) {
    this.state = key >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    return (mix32(this.state) + 0.5) / 0x100000000;
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    return Math.sqrt(-2 * Math.log(this.next())) * Math.cos(2 * Math.PI * this.next());
  }

  /** Failures before the first success, each try succeeding with probability p. */
  geometric(p: number): number {
    return Math.floor(Math.log(this.next()) / Math.log(1 - p));
  }

  /** Poisson by multiplication of uniforms; fine for the small means used here. */
  poisson(mean: number): number {
    const limit = Math.exp(-mean);
    let k = 0;
    let prod = this.next();
    while (prod > limit) {
      k++;
      prod *= this.next();
    }
    return k;
  }

  /** Pareto with scale xm and shape alpha: most values near xm, a long tail above. */
  pareto(xm: number, alpha: number): number {
    return xm / Math.pow(this.next(), 1 / alpha);
  }

  pick<T>(weighted: ReadonlyArray<readonly [T, number]>): T {
    let u = this.next();
    for (const [value, w] of weighted) {
      if (u < w) return value;
      u -= w;
    }
    return weighted[weighted.length - 1]![0];
  }
}
