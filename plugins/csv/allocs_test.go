//go:build !race

package csv

import (
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/measure"
)

// Once warm, writing rows allocates nothing, late attributes and escaping
// included. (The race detector adds allocations: not built with -race.)
func TestWriteBufferNoAllocs(t *testing.T) {
	for _, tc := range []struct {
		name         string
		late, escape bool
	}{{"columns", false, false}, {"late", true, false}, {"escape", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			reg := measure.NewRegistry()
			first, buf := benchBuffers(t, reg, tc.late, tc.escape)
			w := NewWriter(io.Discard, reg, DefaultOptions())
			require.NoError(t, w.WriteBuffer(first))
			require.NoError(t, w.WriteBuffer(buf))
			allocs := testing.AllocsPerRun(20, func() {
				if err := w.WriteBuffer(buf); err != nil {
					t.Fatal(err)
				}
			})
			require.Zero(t, allocs, "allocations per buffer of %d rows", len(buf.Points))
		})
	}
}
