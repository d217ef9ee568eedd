/**
 * Korpelevich's extragradient method (1976), the two-step update reviewers compared with SAM's:
 * SAM takes the gradient at `w + ρ ĝ` (an ascent look-ahead), extragradient at `w − η g` (a descent
 * look-ahead). Written the way `optim.sam` is: a transform of the loss whose look-ahead point is a
 * constant (`stopGradient`), so the result feeds any base optimizer. Beside it: the two-player form
 * for saddle points `min_x max_y f(x, y)`, simultaneous gradient descent-ascent for comparison, and
 * the optimistic (past-gradient) extrapolation, both as a game option and as a gradient transformation.
 */
import { ConfigError } from "../core/errors.js";
import * as np from "../core/numpy/index.js";
import { stopGradient } from "../core/primitives/elementwise.js";
import type { Tensor } from "../core/tensor.js";
import * as tree from "../core/tree.js";
import { grad, valueAndGrad } from "../transforms/index.js";
import { checkNumber, type GradientTransformation } from "./base.js";
import { type ParamPredicate, selectLeaves } from "./select.js";
import { treeScale, treeSub } from "./tree-math.js";

type Loss = (...args: any[]) => any;

/** Options of {@link extragradient}. */
export interface ExtragradientOptions {
  /** Step `η` of the look-ahead `w − η ∇L(w)`, finite and `>= 0` (0 gives the plain gradient). */
  learningRate: number;
  /** `loss` returns `[value, aux]`; the clean pass's aux (e.g. BN state) is returned beside the grads. */
  hasAux?: boolean;
  /** Position of the parameters among the arguments (default 0); the others are the batch. */
  argnums?: number;
  /** Only these leaves take the look-ahead step; the others stay at `w` (default: all). */
  where?: ParamPredicate;
}

function checkArgnums(argnums: unknown, op: string): number {
  if (!Number.isInteger(argnums) || (argnums as number) < 0)
    throw new ConfigError(`argnums must be an integer >= 0, got ${String(argnums)}`, op);
  return argnums as number;
}

/** `w − η g` on the selected leaves, as a constant of the next differentiation. */
function lookAhead(params: unknown, g: unknown, eta: number, mask: boolean[]): unknown {
  const [ws, def] = tree.flatten<Tensor>(params);
  const gs = tree.leaves<Tensor>(g);
  return tree.unflatten(
    def,
    ws.map((w, i) =>
      mask[i] ? np.subtract(w, stopGradient(np.astype(np.multiply(gs[i]!, eta), w.dtype))) : w,
    ),
  );
}

/**
 * The extragradient direction with `grad`'s signature, `(params, ...batch) → grads` (`[grads, aux]`
 * with `hasAux`): `∇L(w̄)` at the look-ahead `w̄ = w − η ∇L(w)`, with `w̄` held constant so the
 * derivative of the look-ahead itself is dropped (as SAM drops `dε/dw`). Feed it to any base
 * optimizer; with `sgd(η)` and the same `η` it is Korpelevich's method. On a linear loss the
 * gradient is the same everywhere, so this equals the plain gradient.
 *
 * @example
 * ```ts
 * const g = optim.extragradient(loss, { learningRate: 0.1 })(params, x, y);
 * const [updates, s] = opt.update(g, state, params);
 * ```
 */
export function extragradient(loss: Loss, opts: ExtragradientOptions): (...args: any[]) => any {
  const op = "extragradient";
  if (typeof loss !== "function") throw new ConfigError("loss must be a function", op);
  if (opts === null || typeof opts !== "object")
    throw new ConfigError("options { learningRate } are required", op);
  checkNumber(op, "learningRate", opts.learningRate, { min: 0 });
  const eta = opts.learningRate;
  const hasAux = opts.hasAux ?? false;
  const argnums = checkArgnums(opts.argnums ?? 0, op);
  const vg = valueAndGrad(loss, { argnums, hasAux });
  return (...args: unknown[]) => {
    if (argnums >= args.length)
      throw new ConfigError(`argnums ${argnums} is out of range for ${args.length} arguments`, op);
    const params = args[argnums];
    const mask = selectLeaves(params, opts.where, op);
    const [v0, g0] = vg(...args);
    const full = args.slice();
    full[argnums] = lookAhead(params, g0, eta, mask);
    const [, g1] = vg(...full);
    return hasAux ? [g1, (v0 as [Tensor, unknown])[1]] : g1;
  };
}

// ------------------------------------------------------------------------------------------------
// Two-player games: min_x max_y f(x, y).

/** A game's value `f(x, y, ...batch)`: the x player minimises it, the y player maximises it. */
export type GameFn<X, Y> = (x: X, y: Y, ...batch: any[]) => Tensor;

/** The state of a saddle-point solver: both players' parameters and, for optimistic steps, the last directions. */
export interface GameState<X = unknown, Y = unknown> {
  x: X;
  y: Y;
  /** The previous step's descent directions (optimistic methods only; `null` before the first step). */
  previous: { dx: X; dy: Y } | null;
}

/** What {@link GameSolver.directions} returns. */
export interface GameDirections<X = unknown, Y = unknown> {
  /** Descent direction of the x player (`∇ₓf` at the method's evaluation point). */
  dx: X;
  /** Descent direction of the y player (`−∇ᵧf`: y ascends), so one base optimizer fits both. */
  dy: Y;
  /** The state to pass to the next call (it carries the past directions for optimistic methods). */
  state: GameState<X, Y>;
}

/** A simultaneous-move solver for `min_x max_y f(x, y)`. */
export interface GameSolver<X = unknown, Y = unknown> {
  /** The starting state at `(x, y)`. */
  init(x: X, y: Y): GameState<X, Y>;
  /** The two players' descent directions, to feed any base optimizer (the returned state keeps x and y). */
  directions(state: GameState<X, Y>, ...batch: unknown[]): GameDirections<X, Y>;
  /** One step: `x ← x − η dx`, `y ← y − η_y dy`. */
  step(state: GameState<X, Y>, ...batch: unknown[]): GameState<X, Y>;
}

/** Options of {@link extragradientGame} and {@link gradientDescentAscent}. */
export interface GameOptions {
  /** Step `η` of both players (and of the extragradient look-ahead), finite and `> 0`. */
  learningRate: number;
  /** A separate step for the y player (default `learningRate`). */
  learningRateY?: number;
}

/** Options of {@link extragradientGame}. */
export interface ExtragradientGameOptions extends GameOptions {
  /**
   * Optimistic gradient descent-ascent (Popov 1980; Daskalakis et al. 2018) instead of the
   * look-ahead: one gradient per step, extrapolated from the past one, `2 v_t − v_{t−1}`
   * (the first step, with no past, is plain descent-ascent). Default false.
   */
  optimistic?: boolean;
}

interface GameRates {
  eta: number;
  etaY: number;
}

function gameRates(opts: GameOptions, op: string): GameRates {
  if (opts === null || typeof opts !== "object")
    throw new ConfigError("options { learningRate } are required", op);
  checkNumber(op, "learningRate", opts.learningRate, { min: 0, minExclusive: true });
  const etaY = opts.learningRateY ?? opts.learningRate;
  checkNumber(op, "learningRateY", etaY, { min: 0, minExclusive: true });
  return { eta: opts.learningRate, etaY };
}

/** The simultaneous field `(∇ₓf, −∇ᵧf)` of the game. */
function gameField<X, Y>(f: GameFn<X, Y>): (x: X, y: Y, batch: unknown[]) => [X, Y] {
  const g = grad(f, { argnums: [0, 1] });
  return (x, y, batch) => {
    const [gx, gy] = g(x, y, ...batch) as [X, Y];
    return [gx, treeScale(-1, gy)];
  };
}

function solver<X, Y>(
  rates: GameRates,
  directions: (state: GameState<X, Y>, batch: unknown[]) => GameDirections<X, Y>,
): GameSolver<X, Y> {
  return {
    init: (x, y) => ({ x, y, previous: null }),
    directions: (state, ...batch) => directions(state, batch),
    step(state, ...batch) {
      const d = directions(state, batch);
      return {
        ...d.state,
        x: treeSub(state.x, treeScale(rates.eta, d.dx)),
        y: treeSub(state.y, treeScale(rates.etaY, d.dy)),
      };
    },
  };
}

/**
 * Simultaneous gradient descent-ascent on `min_x max_y f(x, y)`: `x ← x − η ∇ₓf`, `y ← y + η ∇ᵧf`,
 * both evaluated at the current point. On the bilinear game `xᵀAy` it spirals away from the saddle
 * for every step size; it is here as the baseline that extragradient fixes.
 *
 * @example
 * ```ts
 * const gda = optim.gradientDescentAscent((x, y) => np.sum(x.mul(y)), { learningRate: 0.1 });
 * let s = gda.init(x0, y0);
 * for (let t = 0; t < 100; t++) s = gda.step(s);
 * ```
 */
export function gradientDescentAscent<X, Y>(f: GameFn<X, Y>, opts: GameOptions): GameSolver<X, Y> {
  const op = "gradientDescentAscent";
  if (typeof f !== "function") throw new ConfigError("f must be a function", op);
  const rates = gameRates(opts, op);
  const field = gameField(f);
  return solver(rates, (state, batch) => {
    const [dx, dy] = field(state.x, state.y, batch);
    return { dx, dy, state };
  });
}

/**
 * The extragradient method for `min_x max_y f(x, y)`: both players take a look-ahead step
 * `x̄ = x − η ∇ₓf(x, y)`, `ȳ = y + η ∇ᵧf(x, y)`, and then move from `(x, y)` along the gradients at
 * `(x̄, ȳ)`. On the bilinear game `xᵀAy` with `A` invertible it converges to the saddle for
 * `η < 1/‖A‖`, where simultaneous descent-ascent diverges. With `optimistic: true` it is
 * optimistic descent-ascent (one gradient per step, `2 v_t − v_{t−1}`).
 *
 * @example
 * ```ts
 * const eg = optim.extragradientGame((x, y) => np.sum(x.mul(np.matmul(A, y))), { learningRate: 0.1 });
 * let s = eg.init(x0, y0);
 * for (let t = 0; t < 200; t++) s = eg.step(s);
 * ```
 */
export function extragradientGame<X, Y>(f: GameFn<X, Y>, opts: ExtragradientGameOptions): GameSolver<X, Y> {
  const op = "extragradientGame";
  if (typeof f !== "function") throw new ConfigError("f must be a function", op);
  const rates = gameRates(opts, op);
  const optimistic = opts.optimistic ?? false;
  if (typeof optimistic !== "boolean")
    throw new ConfigError(`optimistic must be a boolean, got ${String(optimistic)}`, op);
  const field = gameField(f);
  if (optimistic) {
    return solver(rates, (state, batch) => {
      const [vx, vy] = field(state.x, state.y, batch);
      const prev = state.previous ?? { dx: vx, dy: vy };
      const extrapolate = <T>(v: T, p: unknown): T => treeSub(treeScale(2, v), p);
      // The stored past is the raw field, not the extrapolated direction: OGDA extrapolates gradients.
      return {
        dx: extrapolate(vx, prev.dx),
        dy: extrapolate(vy, prev.dy),
        state: { ...state, previous: { dx: vx, dy: vy } },
      };
    });
  }
  return solver(rates, (state, batch) => {
    const [vx, vy] = field(state.x, state.y, batch);
    const xBar = treeSub(state.x, treeScale(rates.eta, vx));
    const yBar = treeSub(state.y, treeScale(rates.etaY, vy));
    const [dx, dy] = field(xBar, yBar, batch);
    return { dx, dy, state };
  });
}

// ------------------------------------------------------------------------------------------------
// Optimistic gradient for a single loss, as a gradient transformation.

/** State of {@link optimisticGradient}: the previous incoming gradient and whether there is one. */
export interface OptimisticGradientState<G = unknown> {
  previous: G;
  started: Tensor;
}

/** Options of {@link optimisticGradient}. */
export interface OptimisticGradientOptions {
  /** Weight of the extrapolation, `g_t + beta (g_t − g_{t−1})`; default 1 (the classic `2g_t − g_{t−1}`). */
  beta?: number;
}

/**
 * Optimistic gradient as a gradient transformation: `g_t + β (g_t − g_{t−1})` (the first step,
 * with no past, passes `g_0` through). Chain it before a base optimizer for the single-loss
 * optimistic method: `chain(optimisticGradient(), sgd(lr))`.
 *
 * @example const opt = optim.chain(optim.optimisticGradient(), optim.sgd(0.1));
 */
export function optimisticGradient(
  opts: OptimisticGradientOptions = {},
): GradientTransformation<OptimisticGradientState> {
  const op = "optimisticGradient";
  const beta = opts.beta ?? 1;
  checkNumber(op, "beta", beta, { min: 0 });
  return {
    init: (params) => ({
      previous: tree.map((p: Tensor) => np.zerosLike(p), params),
      started: np.array(false, "bool"),
    }),
    update(updates, state) {
      const out = tree.map(
        (g: Tensor, p: Tensor) => np.add(g, np.multiply(np.subtract(g, np.where(state.started, p, g)), beta)),
        updates,
        state.previous,
      );
      return [out, { previous: updates, started: np.array(true, "bool") }];
    },
  };
}
