package percpu

import "testing"

func BenchmarkPinUnpin(b *testing.B) {
	for b.Loop() {
		Pin()
		Unpin()
	}
}
