/**
 * The backend's persistent linear memory: one `WebAssembly.Memory` (shared when the platform
 * allows, so worker threads can compute into it) that every generated module imports. It only
 * grows; buffers are byte offsets handed out by a small first-fit allocator with coalescing, so a
 * program's buffers can stay resident between calls instead of being copied in and out.
 */
import { ConfigError } from "../../../core/errors.js";

const PAGE = 65536;
/** Alignment of every allocation: a cache line, so v128 accesses never straddle one needlessly. */
export const ALIGN = 64;

/** Options of {@link WasmHeap}. */
export interface HeapOptions {
  /** Use a shared memory (needed for worker threads). Default: when `SharedArrayBuffer` exists. */
  shared?: boolean;
  /** Largest size in 64 KiB pages (default 32768 = 2 GiB); a shared memory reserves it up front. */
  maxPages?: number;
  /** Bytes reserved at offset 0 for the backend's own control block (thread handshakes). */
  reserved?: number;
}

/**
 * Linear memory with `alloc`/`free` over byte offsets.
 *
 * @example
 * ```ts
 * const heap = new WasmHeap();
 * const p = heap.alloc(1024 * 4);
 * heap.f32().set(data, p / 4);
 * heap.free(p);
 * ```
 */
export class WasmHeap {
  readonly memory: WebAssembly.Memory;
  readonly shared: boolean;
  readonly maxPages: number;
  /** Free blocks [offset, size], sorted by offset, never adjacent (coalesced). */
  private readonly freeList: [number, number][] = [];
  /**
   * Block sizes by `offset / ALIGN` (a sparse array): a Map here made alternating alloc/free of
   * one block cost microseconds once it held thousands of live blocks (V8 shrinks and regrows
   * its table around the boundary).
   */
  private readonly sizes: number[] = [];
  private live = 0;
  private top: number;
  /**
   * The memory's size as of the last growth or look: reading `memory.buffer` costs (a shared
   * memory makes a new buffer object), and only this heap grows the memory.
   */
  private committed: number;
  private viewF32: Float32Array | undefined;
  private viewI32: Int32Array | undefined;

  constructor(options: HeapOptions = {}) {
    this.shared = options.shared ?? typeof SharedArrayBuffer !== "undefined";
    if (this.shared && typeof SharedArrayBuffer === "undefined") {
      throw new ConfigError(
        "shared memory needs SharedArrayBuffer (cross-origin isolation in browsers)",
        "WasmHeap",
      );
    }
    this.maxPages = options.maxPages ?? 32768;
    if (!Number.isInteger(this.maxPages) || this.maxPages < 1 || this.maxPages > 65536) {
      throw new ConfigError(`maxPages must be an integer in [1, 65536], got ${this.maxPages}`, "WasmHeap");
    }
    const descriptor: WebAssembly.MemoryDescriptor & { shared?: boolean } = { initial: 16 };
    if (this.shared) {
      descriptor.maximum = this.maxPages;
      descriptor.shared = true;
    } else descriptor.maximum = this.maxPages;
    this.memory = new WebAssembly.Memory(descriptor);
    this.committed = this.memory.buffer.byteLength;
    this.top = roundUp(options.reserved ?? ALIGN, ALIGN);
  }

  /** Total bytes currently backed by memory. */
  get byteLength(): number {
    return this.memory.buffer.byteLength;
  }

  /** Grows the memory (never shrinks) so that `[0, bytes)` is addressable. */
  ensure(bytes: number): void {
    if (bytes <= this.committed) return;
    const have = this.memory.buffer.byteLength;
    this.committed = have;
    if (bytes <= have) return;
    const pages = Math.ceil((bytes - have) / PAGE);
    if (have / PAGE + pages > this.maxPages) {
      throw new ConfigError(`needs ${bytes} bytes, above the maximum of ${this.maxPages} pages`, "WasmHeap");
    }
    this.memory.grow(pages);
    this.committed = this.memory.buffer.byteLength;
  }

  /** A Float32Array over the whole memory (refreshed after growth). */
  f32(): Float32Array {
    // Still the whole memory (a detached view has length 0): no need to look at memory.buffer.
    if (this.viewF32 !== undefined && this.viewF32.length * 4 === this.committed) return this.viewF32;
    const buf = this.memory.buffer;
    this.committed = buf.byteLength;
    if (this.viewF32?.buffer !== buf || this.viewF32.length * 4 !== buf.byteLength) {
      this.viewF32 = new Float32Array(buf);
    }
    return this.viewF32;
  }

  /** An Int32Array over the whole memory (refreshed after growth). */
  i32(): Int32Array {
    if (this.viewI32 !== undefined && this.viewI32.length * 4 === this.committed) return this.viewI32;
    const buf = this.memory.buffer;
    this.committed = buf.byteLength;
    if (this.viewI32?.buffer !== buf || this.viewI32.length * 4 !== buf.byteLength) {
      this.viewI32 = new Int32Array(buf);
    }
    return this.viewI32;
  }

  /** Allocates `bytes` (rounded up to {@link ALIGN}) and returns the byte offset. */
  alloc(bytes: number): number {
    if (!Number.isFinite(bytes) || bytes < 0) throw new ConfigError(`bad size ${bytes}`, "WasmHeap.alloc");
    const size = roundUp(Math.max(bytes, 1), ALIGN);
    for (let i = 0; i < this.freeList.length; i++) {
      const block = this.freeList[i]!;
      if (block[1] >= size) {
        const ptr = block[0];
        if (block[1] === size) this.freeList.splice(i, 1);
        else {
          block[0] += size;
          block[1] -= size;
        }
        this.sizes[ptr / ALIGN] = size;
        this.live += size;
        return ptr;
      }
    }
    const ptr = this.top;
    this.ensure(ptr + size);
    this.top = ptr + size;
    this.sizes[ptr / ALIGN] = size;
    this.live += size;
    return ptr;
  }

  /** Returns a block from {@link WasmHeap.alloc} to the free list. */
  free(ptr: number): void {
    const size = ptr % ALIGN === 0 ? this.sizes[ptr / ALIGN] : undefined;
    if (size === undefined) throw new ConfigError(`offset ${ptr} was not allocated`, "WasmHeap.free");
    delete this.sizes[ptr / ALIGN];
    this.live -= size;
    let i = 0;
    while (i < this.freeList.length && this.freeList[i]![0] < ptr) i++;
    this.freeList.splice(i, 0, [ptr, size]);
    // Coalesce with the next, then with the previous block.
    const cur = this.freeList[i]!;
    const next = this.freeList[i + 1];
    if (next && cur[0] + cur[1] === next[0]) {
      cur[1] += next[1];
      this.freeList.splice(i + 1, 1);
    }
    const prev = this.freeList[i - 1];
    if (prev && prev[0] + prev[1] === cur[0]) {
      prev[1] += cur[1];
      this.freeList.splice(i, 1);
    }
    // A free block at the top goes back to the bump region.
    const last = this.freeList[this.freeList.length - 1];
    if (last && last[0] + last[1] === this.top) {
      this.top = last[0];
      this.freeList.pop();
    }
  }

  /** Bytes handed out and not freed. */
  get liveBytes(): number {
    return this.live;
  }
}

export function roundUp(n: number, m: number): number {
  return Math.ceil(n / m) * m;
}
