//go:build amd64 && !race && !purego && go1.26 && !go1.27

#include "go_asm.h"
#include "textflag.h"

// Offsets of g.m, m.p and p.id in the runtime of Go 1.26: the chain
// runtime.procPin follows (getg().m.p.ptr().id). The build tag confines
// them to that release; they are checked at init against runtime.procPin
// (fast_amd64.go) and on every P by TestProcID, which fails on an amd64
// build without race or purego whose release is outside the tag.
//
// For a new Go release, re-derive them from the DWARF of a binary built
// with it:
//
//	go build -o /tmp/ro ./internal/runtimeoffsets && /tmp/ro
//
// copy its three #defines here, move the go1.N bounds of the build tags of
// fast_amd64.go, fast_amd64.s and fast_other.go, and run
// go test -run TestProcID ./slab/.
//
// Which Go each block mirrors:
//
//	PROC_ID      runtime.procPin's getg().m.p.ptr().id, without mp.locks++
//	cacheAlloc   cacheAllocGo's pinned pop of the main sheaf (alloc.go)
//	cacheFree    cacheFreeGo (free.go): hdrAt, the cache id, objStart
//	             (mask, or recip for other sizes: label recip),
//	             freelistHead, then its pinned push onto main, or onto
//	             the remote sheaf as freeSlow does (label remote)
#define G_M 48
#define M_P 208
#define P_ID 0

// A NOSPLIT assembly function that calls nothing cannot be preempted:
// the runtime never stops assembly at an asynchronous safe point, and
// there is no stack check to preempt at synchronously. So the P read in
// the middle is still this goroutine's P at the end, and a stop-the-world
// grace period (percpu.Synchronize) waits for the function to return —
// the pinned section of the Go path, without the two calls to
// procPin/procUnpin and the spills around them.
//
// Everything the fast paths cannot do they leave to the Go path by a tail
// jump (JMP) to a Go function of the same signature: the arguments are
// still where the caller put them, so the Go function runs as if called
// directly, with nothing of the fast path's attempt left behind.

// PROC_ID loads the running goroutine's P id into reg: g → m → p → id.
// g is R14: Go code under the register ABI (ABIInternal) keeps g in R14
// at all times, and a direct call from it to an ABI0 (assembly) function
// leaves it there (the caller reloads R14 from TLS after the call, since
// ABI0 code may clobber it). These functions are unexported and called
// only from Go code, so R14 is g on entry; using it instead of (TLS)
// takes one load off the chain. TestProcID checks the whole chain on
// every P, and procIDAgrees at init.
#define PROC_ID(reg) \
	MOVQ G_M(R14), reg \
	MOVQ M_P(reg), reg \
	MOVLQSX P_ID(reg), reg

// func procID() int
TEXT ·procID(SB), NOSPLIT|NOFRAME, $0-8
	PROC_ID(AX)
	MOVQ AX, ret+0(FP)
	RET

// func cacheAlloc(c *Cache) (p unsafe.Pointer, err error)
// Pops the P's main sheaf; everything else is cacheAllocGo's.
// Kernel: alloc_from_pcs().
TEXT ·cacheAlloc(SB), NOSPLIT|NOFRAME, $0-32
	MOVQ c+0(FP), DX
	MOVQ Cache_fast(DX), DX         // k (deadCache once destroyed)
	PROC_ID(CX)
	CMPQ CX, kmemCache_allocProcs(DX)
	JCC  aslow                      // pid >= len(k.pcpu), unsigned; 0 while flushing, fast paths off, or accounted
	SHLQ $const_pcpuShift, CX
	ADDQ kmemCache_pcpu(DX), CX         // pc = &k.pcpu[pid]
	MOVQ pcpuFields_n(CX), AX      // the main sheaf's count (0: none)
	SUBQ $1, AX
	JLT  aslow                      // empty
	MOVQ AX, pcpuFields_n(CX)
	MOVQ pcpuFields_objs(CX), SI
	MOVQ (SI)(AX*8), AX
	INCQ (pcpuFields_stat+const_AllocFastpath*8)(CX)
	MOVQ AX, p+8(FP)
	MOVQ $0, err_itable+16(FP)
	MOVQ $0, err_data+24(FP)
	RET
aslow:
	JMP ·cacheAllocGo(SB)

// func cacheFree(c *Cache, p unsafe.Pointer)
// Validates p (hdrAt, the cache id, objStart) and pushes it onto the P's
// main sheaf if it is of the P's node, or onto the P's remote sheaf if
// that collects p's node; either must have room and not have p on top.
// Everything else (refusal, double free, a remote sheaf to replace, full
// main sheaf, flush) is cacheFreeGo's. Kernel: free_to_pcs().
TEXT ·cacheFree(SB), NOSPLIT|NOFRAME, $0-16
	MOVQ c+0(FP), DX
	MOVQ p+8(FP), DI
	MOVQ Cache_fast(DX), DX         // k (deadCache once destroyed: empty range)
	// AX = &Page of p (k.hdrAt without the owner offset)
	MOVQ DI, AX
	SUBQ kmemCache_memBase(DX), AX
	CMPQ AX, kmemCache_memSize(DX)
	JCC  fslow                      // outside hotslab memory
	SHRQ $const_pageShift, AX
	IMULQ $const_pageStructSize, AX
	ADDQ kmemCache_vmemmap(DX), AX
	MOVL (const_pageOwnerOff+slabHdr_cache)(AX), R9
	CMPL R9, kmemCache_id(DX)
	JNE  fslow                      // not a slab page of this cache
	MOVQ DI, R10
	SUBQ (const_pageOwnerOff+slabHdr_base)(AX), R10 // offset in the slab
	// A power-of-two size divides the slab: no tail to check. For the
	// other sizes fastMask is all ones, so only offset 0 passes here and
	// the rest go to the reciprocal check.
	TESTQ kmemCache_fastMask(DX), R10
	JNE  recip
valid:
	MOVBQZX (const_pageOwnerOff+slabHdr_node)(AX), R8
	// p heading its slab's freelist is a double free (freelistHead).
	// In the slab's first page (offset < a page: every object of an
	// order-0 slab) the head page is p's own, AX.
	CMPQ R10, $const_pageSize
	JCC  headpage
	LEAQ 1(R10), R12
	CMPL (const_pageOwnerOff+slabHdr_freelist)(AX), R12
	JEQ  fslow
checked:
	PROC_ID(CX)
	CMPQ CX, kmemCache_freeProcs(DX)
	JCC  fslow                      // pid >= len(k.pcpu) (== len(k.procNode)); 0 while flushing, or fast paths off
	SHLQ $const_pcpuShift, CX
	ADDQ kmemCache_pcpu(DX), CX     // pc = &k.pcpu[pid]
	CMPQ pcpuFields_node(CX), R8
	JNE  remote                     // an object of another node
	// Push DI onto the main sheaf unless it is full (or there is none:
	// len 0) or DI is on top (objs[-1] of an empty sheaf is the zero
	// word newSheaf puts before every array).
	MOVQ pcpuFields_n(CX), AX
	CMPQ AX, (pcpuFields_objs+8)(CX)
	JCC  fslow                      // full: the Go path replaces it
	MOVQ pcpuFields_objs(CX), SI
	CMPQ -8(SI)(AX*8), DI
	JEQ  fslow                      // on top: double free
	MOVQ DI, (SI)(AX*8)
	INCQ AX
	MOVQ AX, pcpuFields_n(CX)
	INCQ (pcpuFields_stat+const_FreeFastpath*8)(CX)
	RET
push:
	// The main push above for the remote sheaf: BX a count and array
	// ({n int; objs []uintptr} at the offsets of pcpuSheaves and sheaf
	// alike, checked in pcpu.go), R9 the counter to bump.
	MOVQ pcpuFields_n(BX), AX
	CMPQ AX, (pcpuFields_objs+8)(BX)
	JCC  fslow                      // full: the Go path replaces it
	MOVQ pcpuFields_objs(BX), SI
	CMPQ -8(SI)(AX*8), DI
	JEQ  fslow                      // on top: double free
	MOVQ DI, (SI)(AX*8)
	INCQ AX
	MOVQ AX, pcpuFields_n(BX)
	INCQ (R9)
	RET
remote:
	// The P's remote sheaf, if it collects node R8 (freeSlow's remote
	// case, without the replacement).
	MOVQ pcpuFields_remote(CX), BX
	TESTQ BX, BX
	JEQ  fslow
	CMPQ sheafFields_node(BX), R8
	JNE  fslow
	LEAQ (pcpuFields_stat+const_FreeRemote*8)(CX), R9
	JMP  push
headpage:
	// Further in: the head page is (offset/page) struct pages before p's.
	MOVQ R10, R11
	SHRQ $const_pageShift, R11
	IMUL3Q $const_pageStructSize, R11, R11
	MOVQ AX, R12
	SUBQ R11, R12
	LEAQ 1(R10), R11
	CMPL (const_pageOwnerOff+slabHdr_freelist)(R12), R11
	JEQ  fslow
	JMP  checked
recip:
	// objStart for a size that is not a power of two: idx = off*recip>>32
	// must be < objects and idx*size == off. (A power of two's offset
	// that failed its mask fails here too.)
	MOVQ R10, R11
	IMULQ kmemCache_recip(DX), R11
	SHRQ $32, R11
	MOVQ kmemCache_objects(DX), R12
	TESTB $const_hdrMin, (const_pageOwnerOff+slabHdr_flags)(AX)
	JEQ  recipobjs
	MOVQ kmemCache_minObjects(DX), R12 // a slab of the fallback order
recipobjs:
	CMPQ R11, R12
	JCC  fslow
	IMULQ kmemCache_size(DX), R11
	CMPQ R11, R10
	JNE  fslow
	JMP  valid
fslow:
	JMP ·cacheFreeGo(SB)

// func groupReuse(c *Cache, tid *atomic.Uint32) unsafe.Pointer
// Pops the P's main sheaf's top object if its ObjCgroup vector entry is
// *tid, read here, pinned (it is still charged where the caller's
// allocation would charge), else returns nil. Mirrors groupReuseGo (memcg.go): hdrAt, the slab's
// geometry (hdrMin), objExt. groupProcs is 0 for a cache that is not
// accounted, while flushing, for a destroyed handle (deadCache) and with
// the fast paths off.
TEXT ·groupReuse(SB), NOSPLIT|NOFRAME, $0-24
	MOVQ c+0(FP), DX
	MOVQ Cache_fast(DX), DX
	PROC_ID(CX)
	CMPQ CX, kmemCache_groupProcs(DX)
	JCC  gnone
	SHLQ $const_pcpuShift, CX
	ADDQ kmemCache_pcpu(DX), CX     // pc = &k.pcpu[pid]
	MOVQ pcpuFields_n(CX), AX
	SUBQ $1, AX
	JLT  gnone                      // empty
	MOVQ pcpuFields_objs(CX), SI
	MOVQ (SI)(AX*8), DI             // the top object
	MOVQ DI, R8
	SUBQ kmemCache_memBase(DX), R8
	CMPQ R8, kmemCache_memSize(DX)
	JCC  gnone
	SHRQ $const_pageShift, R8
	IMULQ $const_pageStructSize, R8
	ADDQ kmemCache_vmemmap(DX), R8  // &Page of the object
	MOVQ (const_pageOwnerOff+slabHdr_base)(R8), R9
	MOVQ DI, R10
	SUBQ R9, R10
	IMULQ kmemCache_recip(DX), R10
	SHRQ $32, R10                   // the object's index
	MOVQ kmemCache_slabBytes(DX), R11
	TESTB $const_hdrMin, (const_pageOwnerOff+slabHdr_flags)(R8)
	JEQ  gvec
	MOVQ kmemCache_minSlabBytes(DX), R11
gvec:
	ADDQ R9, R11                    // the vector
	MOVQ tid+8(FP), R12
	MOVL (R12), R12                 // *tid, pinned
	CMPL (R11)(R10*4), R12
	JNE  gnone
	MOVQ AX, pcpuFields_n(CX)
	INCQ (pcpuFields_stat+const_AllocFastpath*8)(CX)
	MOVQ DI, ret+16(FP)
	RET
gnone:
	MOVQ $0, ret+16(FP)
	RET
