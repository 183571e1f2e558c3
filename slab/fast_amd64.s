//go:build amd64 && !race && go1.26 && !go1.27

#include "go_asm.h"
#include "textflag.h"

// Offsets of g.m, m.p and p.id in the runtime of Go 1.26 (read from the
// DWARF of a Go 1.26 binary; checked at init against runtime.procPin, see
// fast_amd64.go). The build tag confines them to that release.
#define G_M 48
#define M_P 208
#define P_ID 0

// A NOSPLIT assembly function that calls nothing cannot be preempted:
// the runtime never stops assembly at an asynchronous safe point, and
// there is no stack check to preempt at synchronously. So the P read at
// the top is still this goroutine's P at the bottom, and a stop-the-world
// grace period (percpu.Synchronize) waits for the function to return —
// the pinned section of the Go path, without the two calls to
// procPin/procUnpin and the spills around them.

// func procID() int
TEXT ·procID(SB), NOSPLIT|NOFRAME, $0-8
	MOVQ (TLS), AX
	MOVQ G_M(AX), AX
	MOVQ M_P(AX), AX
	MOVLQSX P_ID(AX), AX
	MOVQ AX, ret+0(FP)
	RET

// func allocFast(k *cache) uintptr
// Pops the P's main sheaf; 0 when the slow path must run.
TEXT ·allocFast(SB), NOSPLIT|NOFRAME, $0-16
	MOVQ k+0(FP), DX
	MOVQ cache_flushing(DX), AX
	MOVL (AX), AX
	TESTL AX, AX
	JNE  slow
	MOVQ (TLS), CX
	MOVQ G_M(CX), CX
	MOVQ M_P(CX), CX
	MOVLQSX P_ID(CX), CX
	CMPQ CX, (cache_pcpu+8)(DX)
	JCC  slow                       // pid >= len(k.pcpu), unsigned
	IMULQ $pcpuSheaves__size, CX
	ADDQ cache_pcpu(DX), CX         // pc = &k.pcpu[pid]
	MOVQ pcpuSheaves_main(CX), BX
	TESTQ BX, BX
	JEQ  slow
	MOVQ sheaf_n(BX), AX
	TESTQ AX, AX
	JLE  slow
	DECQ AX
	MOVQ AX, sheaf_n(BX)
	MOVQ sheaf_objs(BX), SI
	MOVQ (SI)(AX*8), AX
	INCQ (pcpuSheaves_stat+const_AllocFastpath*8)(CX)
	MOVQ AX, ret+8(FP)
	RET
slow:
	MOVQ $0, ret+8(FP)
	RET

// func freeFast(k *cache, addr, node uintptr) uintptr
// Pushes a validated object of node onto the P's main sheaf: 0 done,
// 1 the slow path must run, 2 addr is on top of the sheaf (double free).
TEXT ·freeFast(SB), NOSPLIT|NOFRAME, $0-32
	MOVQ k+0(FP), DX
	MOVQ addr+8(FP), DI
	MOVQ node+16(FP), R8
	MOVQ cache_flushing(DX), AX
	MOVL (AX), AX
	TESTL AX, AX
	JNE  fslow
	MOVQ (TLS), CX
	MOVQ G_M(CX), CX
	MOVQ M_P(CX), CX
	MOVLQSX P_ID(CX), CX
	CMPQ CX, (cache_pcpu+8)(DX)
	JCC  fslow                      // pid >= len(k.pcpu) (== len(k.memNode))
	MOVQ cache_memNode(DX), AX
	MOVLQSX (AX)(CX*4), AX
	CMPQ AX, R8
	JNE  fslow                      // remote object
	IMULQ $pcpuSheaves__size, CX
	ADDQ cache_pcpu(DX), CX
	MOVQ pcpuSheaves_main(CX), BX
	TESTQ BX, BX
	JEQ  fslow
	MOVQ sheaf_n(BX), AX
	MOVQ sheaf_objs(BX), SI
	TESTQ AX, AX
	JLE  push
	CMPQ -8(SI)(AX*8), DI
	JEQ  double
push:
	CMPQ AX, (sheaf_objs+8)(BX)
	JGE  fslow                      // full
	MOVQ DI, (SI)(AX*8)
	INCQ AX
	MOVQ AX, sheaf_n(BX)
	INCQ (pcpuSheaves_stat+const_FreeFastpath*8)(CX)
	MOVQ $0, ret+24(FP)
	RET
fslow:
	MOVQ $1, ret+24(FP)
	RET
double:
	MOVQ $2, ret+24(FP)
	RET
