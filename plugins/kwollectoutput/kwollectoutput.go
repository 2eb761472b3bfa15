// Package kwollectoutput is the kwollect-output plugin: it POSTs points to
// Kwollect (Grid'5000's metrics service), in Alumet's wire format, so that
// they show on the site's dashboard and come back through the API like any
// metric. See README.md.
package kwollectoutput

// Plugin identity.
const (
	Name      = "kwollect-output"
	Version   = "0.1.0"
	LogTarget = "plugin_kwollect_output"
)
