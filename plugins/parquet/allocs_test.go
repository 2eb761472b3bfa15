//go:build !race

package parquet

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/measure"
)

// Once warm, Write allocates nothing per row, compact points or plain
// ones, late attributes included; writing a row group allocates only its
// metadata (a few hundred small objects for 65,536 rows). (The race
// detector adds allocations: not built with -race.)
func TestWriteNoAllocs(t *testing.T) {
	for _, compact := range []bool{true, false} {
		t.Run(map[bool]string{true: "compact", false: "plain"}[compact], func(t *testing.T) {
			reg := measure.NewRegistry()
			var bufs []*measure.Buffer
			workload(t, reg, 16*4096, func(b *measure.Buffer) {
				c := &measure.Buffer{Compact: append([]measure.SeriesPoint(nil), b.Compact...)}
				for i := range c.Compact {
					if i%7 == 0 { // a series with late attributes
						s := *c.Compact[i].Series
						s.Attributes = append(s.Attributes, str("cpu", "1"), u64("run", 2), str("x", "y"))
						c.Compact[i].Series = &s
					}
				}
				if !compact {
					c.Expand()
				}
				bufs = append(bufs, c)
			})
			// The compact series made above are one per point: keep one per node.
			if compact {
				late := map[string]*measure.Series{}
				for _, b := range bufs {
					for i := range b.Compact {
						p := &b.Compact[i]
						if len(p.Series.Attributes) > 1 {
							if s, ok := late[p.Series.Resource.ID]; ok {
								p.Series = s
							} else {
								late[p.Series.Resource.ID] = p.Series
							}
						}
					}
				}
			}
			cfg := testConfig(t.TempDir())
			cfg.RowGroupRows = 16 * 4096
			o, err := Open(cfg, reg, nil, false)
			require.NoError(t, err)
			defer o.Close()
			write := func(b *measure.Buffer) {
				if err := o.Write(context.Background(), b); err != nil {
					t.Fatal(err)
				}
			}
			for _, b := range bufs { // a row group: every buffer at its size
				write(b)
			}
			i := 0
			allocs := testing.AllocsPerRun(8, func() { write(bufs[i]); i++ })
			require.Zero(t, allocs, "allocations per buffer of 4096 rows")
			start := time.Now()
			allocs = testing.AllocsPerRun(2, func() {
				for _, b := range bufs {
					write(b)
				}
			})
			t.Logf("%.0f allocations per row group of %d rows (%v)", allocs, cfg.RowGroupRows, time.Since(start)/3)
			require.Less(t, allocs, 400.0)
		})
	}
}
