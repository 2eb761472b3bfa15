package plugin

// CarbonIntensity is what the energy-to-carbon transform converts energy
// with, recorded in the Directory so that the energy report can show gCO₂e
// next to its joules with the same factor, and say where the factor comes
// from.
type CarbonIntensity struct {
	// GramsPerKWh is the intensity in gCO₂e per kWh.
	GramsPerKWh float64
	// Mode is the transform's mode: "world_avg", "country" or
	// "intensity_override".
	Mode string
	// Source says where GramsPerKWh comes from, for a reader of the report,
	// e.g. "world average (IEA)", "FRA, France, 2023 (Alumet's energy mix
	// table)" or "intensity_override in the configuration".
	Source string
}

// SetCarbonIntensity records the energy-to-carbon transform's intensity.
func (d *Directory) SetCarbonIntensity(c CarbonIntensity) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.carbon = &c
}

// CarbonIntensity is what SetCarbonIntensity recorded; ok is false when no
// energy-to-carbon transform runs.
func (d *Directory) CarbonIntensity() (c CarbonIntensity, ok bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.carbon == nil {
		return CarbonIntensity{}, false
	}
	return *d.carbon, true
}
