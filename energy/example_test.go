package energy_test

import (
	"fmt"
	"time"

	"github.com/alumet-go/alumet-agent/energy"
)

// Kwollect's 1 Hz wattmetre rows of one node, with rows 20..29 missing,
// integrated over a window with sub-second edges.
func ExampleIntegrate() {
	start := time.Date(2024, 10, 3, 8, 12, 0, 0, time.UTC)
	var rows []energy.Sample
	for k := range 60 {
		if k >= 20 && k < 30 {
			continue // missing rows
		}
		rows = append(rows, energy.Sample{T: start.Add(time.Duration(k) * time.Second), W: 100 + 10*float64(k)})
	}
	o := energy.OptionsFor("wattmetre_power_watt", time.Second)
	r, err := energy.Integrate(rows, start.Add(250*time.Millisecond), start.Add(59500*time.Millisecond), o)
	if err != nil {
		panic(err)
	}
	fmt.Println(r.Method)
	fmt.Printf("%v over %v: mean %v, peak %v, %d samples\n", r.Energy, r.Duration, r.Mean, r.Peak, r.Samples)
	fmt.Printf("coverage %.2f %%, bridged %v, ± %v\n", 100*r.Coverage, r.BridgedEnergy, r.Uncertainty)
	for _, g := range r.Gaps {
		fmt.Printf("gap %s – %s (%v)\n", g.From.Format("15:04:05.000"), g.To.Format("15:04:05.000"), g.Duration())
	}
	// Output:
	// step integration of 1 s averages (each sample covers [t, t+1s))
	// 23.33 kJ over 59.25s: mean 393.8 W, peak 690 W, 50 samples
	// coverage 83.12 %, bridged 3.45 kJ, ± 728.4 J
	// gap 08:12:20.000 – 08:12:30.000 (10s)
}
