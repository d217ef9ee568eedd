/**
 * What a resident plan keeps in a backend's {@link DeviceMemory} beyond one call:
 *
 * - heap copies of JS-side inputs (a data batch, a closed-over constant), cached on the
 *   typed-array object: Tensors are immutable, so the copy stays valid for as long as the array
 *   lives (JAX's `device_put`, done once). An argument is cached the second time it is seen (a
 *   constant at once), so arrays passed once, such as parameters copied out of the previous
 *   step, are copied per call as before instead of filling the cache. Bounded, least recently
 *   used out first; a FinalizationRegistry frees the copy of an array that was garbage-collected.
 * - result views: on a shared memory a program output is returned as a Float32Array INTO the
 *   heap. Its block belongs to that view object (not to a Tensor: reshape shares one buffer
 *   between tensors) until a FinalizationRegistry on the view frees it. Such a view passed back as
 *   an input is used in place. Finalizers run only between tasks, so the bytes held by live views
 *   are capped, and so are those made within one synchronous job (a loop of calls); beyond
 *   either, results are copied out.
 *
 * Only the view object keeps its block alive: a typed array built over a result's buffer
 * (`subarray`, `new Float32Array(buf.buffer, ...)`) does not, and may see the block reused once
 * the original view is collected; `tensor.data()` copies. Posting a result's buffer to a worker
 * shares the whole memory rather than copying the values.
 *
 * `tensor.delete()` (JAX's `Array.delete`) hands a view's block back at once, when every tensor
 * built over that view object is deleted: tensors are counted through the core's buffer hooks.
 * Until then (or without a delete) the finalizer frees it.
 *
 * One `ResidentMemory` exists per memory object, shared by every program on that backend.
 */
import { type DType, type TypedArray, allocate } from "../../core/dtype.js";
import { installBufferHooks } from "../../core/tensor.js";
import type { DeviceMemory } from "./backend.js";

/** Default {@link DeviceMemory.resultViewBytes}. */
export const DEFAULT_RESULT_VIEW_BYTES = 64 * 2 ** 20;
/**
 * The most bytes of result views made within one synchronous job. Views made in a synchronous
 * loop cannot be freed before it ends, so each lands on fresh memory (page faults, which cost
 * more than copying the result out into memory V8 recycles); past this budget such a loop gets
 * copies. A queued microtask resets it when the job ends.
 */
export const JOB_VIEW_BYTES = 16 * 2 ** 20;
/**
 * The most live result views at once: a view and its finalization record cost JS memory too
 * (a few hundred bytes), which the byte cap does not see for tiny results such as a loss.
 */
export const MAX_RESULT_VIEWS = 16384;
/** Default {@link DeviceMemory.inputCacheBytes}. */
export const DEFAULT_INPUT_CACHE_BYTES = 128 * 2 ** 20;

interface CacheEntry {
  readonly ptr: number;
  readonly bytes: number;
  readonly key: WeakRef<TypedArray>;
  /** The run that used it last (least recently used entries are evicted first). */
  used: number;
  freed: boolean;
}

interface HeldView {
  readonly ptr: number;
  readonly bytes: number;
  readonly owner: ResidentMemory;
  /** Tensors built over the view and not deleted. */
  tensors: number;
  /** The synchronous job that made it (its bytes count against that job's budget until freed). */
  readonly job: number;
}

/** Every live result view, of every memory, for the tensor hooks. */
const liveViews = new WeakMap<TypedArray, HeldView>();

installBufferHooks({
  wrap(buf) {
    const h = liveViews.get(buf);
    if (h !== undefined) h.tensors++;
  },
  release(buf) {
    const h = liveViews.get(buf);
    if (h !== undefined && --h.tensors === 0) {
      liveViews.delete(buf);
      h.owner.releaseDeleted(h);
    }
  },
});

const hasFinalizers = typeof FinalizationRegistry !== "undefined" && typeof WeakRef !== "undefined";

/**
 * The resident state of one device memory: input cache, live result views, their accounting.
 *
 * @example
 * ```ts
 * const res = residentMemory(backend.memory!);
 * const p = res.placeInput(x._buf!);           // heap offset of x (cached), or -1
 * const y = res.view(ptr, n);                  // a result view, or null: copy it out instead
 * ```
 */
export class ResidentMemory {
  readonly resultViewBytes: number;
  readonly inputCacheBytes: number;
  /** Every memory buffer object a result view was made on (a shared memory's buffer object changes on growth). */
  private readonly viewBuffers = new WeakSet<ArrayBufferLike>();
  /** Blocks owned by live result views: offset → bytes. */
  private readonly viewBlocks = new Map<number, number>();
  private held = 0;
  private readonly viewRegistry: FinalizationRegistry<HeldView> | null;
  private readonly cache = new WeakMap<TypedArray, CacheEntry>();
  /** Arguments seen once and not cached yet. */
  private readonly seen = new WeakSet<TypedArray>();
  /** Cache entries (not reordered on a hit: a Set's delete + add churn is slow in V8). */
  private readonly entries = new Set<CacheEntry>();
  private runs = 0;
  private cached = 0;
  private readonly cacheRegistry: FinalizationRegistry<CacheEntry> | null;
  private depth = 0;
  private jobBytes = 0;
  private jobPending = false;
  private job = 0;

  constructor(readonly memory: DeviceMemory) {
    this.resultViewBytes = memory.resultViewBytes ?? DEFAULT_RESULT_VIEW_BYTES;
    this.inputCacheBytes = memory.inputCacheBytes ?? DEFAULT_INPUT_CACHE_BYTES;
    this.viewRegistry = hasFinalizers ? new FinalizationRegistry((h) => this.releaseView(h)) : null;
    this.cacheRegistry = hasFinalizers ? new FinalizationRegistry((e) => this.evict(e)) : null;
  }

  /** Bytes held by live result views. */
  get heldBytes(): number {
    return this.held;
  }

  /** Live result views. */
  get viewCount(): number {
    return this.viewBlocks.size;
  }

  /** Cached input copies. */
  get cacheCount(): number {
    return this.entries.size;
  }

  /** Bytes of cached input copies. */
  get cachedBytes(): number {
    return this.cached;
  }

  /** Whether `buf` has a cached heap copy. */
  isCached(buf: TypedArray): boolean {
    return this.cache.has(buf);
  }

  /** Marks the start of a program run (runs may nest when an escape calls another program). */
  enter(): void {
    if (this.depth++ === 0) this.runs++;
  }

  /** Marks the end of a run; the outermost one trims the input cache to its bound. */
  exit(): void {
    if (--this.depth > 0 || this.cached <= this.inputCacheBytes) return;
    const byAge = [...this.entries].sort((a, b) => a.used - b.used);
    for (const e of byAge) {
      if (this.cached <= this.inputCacheBytes) break;
      this.evict(e);
    }
  }

  /** The offset of `buf` when it is a live result view of this memory (used in place), else -1. */
  inPlace(buf: TypedArray): number {
    if (!(buf instanceof Float32Array) || !this.viewBuffers.has(buf.buffer)) return -1;
    const bytes = this.viewBlocks.get(buf.byteOffset);
    return bytes !== undefined && buf.byteLength <= bytes ? buf.byteOffset : -1;
  }

  /**
   * The heap offset of a program input's buffer without a new copy: a result view in place, or a
   * cached copy (made now on a miss, for a `constant` or an argument seen before). -1 when it is
   * not cached: the caller copies it into a block of its own. Cached entries stay valid until the
   * outermost run exits.
   */
  placeInput(buf: TypedArray, constant = false): number {
    const here = this.inPlace(buf);
    if (here >= 0) return here;
    const hit = this.cache.get(buf);
    if (hit !== undefined) {
      hit.used = this.runs;
      return hit.ptr;
    }
    const bytes = 4 * buf.length;
    if (bytes > this.inputCacheBytes) return -1;
    if (!constant && !this.seen.has(buf)) {
      this.seen.add(buf);
      return -1;
    }
    this.seen.delete(buf);
    const ptr = this.memory.alloc(bytes);
    this.write(ptr, buf);
    const entry: CacheEntry = { ptr, bytes, key: new WeakRef(buf), used: this.runs, freed: false };
    this.cache.set(buf, entry);
    this.entries.add(entry);
    this.cached += bytes;
    this.cacheRegistry?.register(buf, entry, entry);
    return ptr;
  }

  /** Copies `buf` (any dtype; converted to float32 as the kernels compute) to offset `ptr`. */
  write(ptr: number, buf: TypedArray): void {
    this.memory.f32().set(buf, ptr / 4);
  }

  /** A JS-side copy of `n` float32 values at `ptr`, converted to `dtype`. */
  read(ptr: number, n: number, dtype: DType): TypedArray {
    const src = this.memory.f32().subarray(ptr / 4, ptr / 4 + n);
    if (dtype === "float32") return src.slice();
    const out = allocate(dtype, n);
    out.set(src);
    return out;
  }

  /**
   * A Float32Array view of the `n` values at block `ptr`, which from now on belongs to the view
   * (freed when it is garbage-collected); null when the memory is not shared, finalizers are
   * missing, the cap on bytes held by views would be exceeded or this synchronous job has made
   * {@link JOB_VIEW_BYTES} of views already: copy the result out then.
   */
  view(ptr: number, n: number): Float32Array | null {
    const bytes = 4 * n;
    if (!this.memory.shared || this.viewRegistry === null || n === 0) return null;
    if (this.held + bytes > this.resultViewBytes || this.viewBlocks.size >= MAX_RESULT_VIEWS) return null;
    if (this.jobBytes + bytes > JOB_VIEW_BYTES) return null;
    this.jobBytes += bytes;
    if (!this.jobPending) {
      this.jobPending = true;
      queueMicrotask(() => {
        this.jobBytes = 0;
        this.jobPending = false;
        this.job++;
      });
    }
    const buffer = this.memory.f32().buffer;
    this.viewBuffers.add(buffer);
    const v = new Float32Array(buffer, ptr, n);
    this.viewBlocks.set(ptr, bytes);
    this.held += bytes;
    const held: HeldView = { ptr, bytes, owner: this, tensors: 0, job: this.job };
    liveViews.set(v, held);
    this.viewRegistry.register(v, held, held);
    return v;
  }

  private releaseView(h: HeldView): void {
    this.viewBlocks.delete(h.ptr);
    this.held -= h.bytes;
    this.memory.free(h.ptr);
  }

  /** A view whose every tensor was deleted: its block is free now, not at finalization. */
  releaseDeleted(h: HeldView): void {
    this.viewRegistry?.unregister(h);
    if (h.job === this.job && this.jobPending) this.jobBytes -= h.bytes;
    this.releaseView(h);
  }

  private evict(e: CacheEntry): void {
    if (e.freed) return;
    e.freed = true;
    this.entries.delete(e);
    this.cached -= e.bytes;
    this.cacheRegistry?.unregister(e);
    const key = e.key.deref();
    if (key !== undefined) this.cache.delete(key);
    this.memory.free(e.ptr);
  }
}

const states = new WeakMap<DeviceMemory, ResidentMemory>();

/**
 * The resident state of `memory` (created on first use).
 *
 * @example
 * ```ts
 * residentMemory(backend.memory!).heldBytes; // bytes held by live result views
 * ```
 */
export function residentMemory(memory: DeviceMemory): ResidentMemory {
  let s = states.get(memory);
  if (s === undefined) {
    s = new ResidentMemory(memory);
    states.set(memory, s);
  }
  return s;
}
