package rapl

import (
	"log/slog"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/measure"
)

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestZoneDomain(t *testing.T) {
	tests := []struct {
		name      string
		domain    domain
		socket    int
		hasSocket bool
		err       string
	}{
		{name: "package-0", domain: domainPackage, socket: 0, hasSocket: true},
		{name: "package-12", domain: domainPackage, socket: 12, hasSocket: true},
		{name: "core", domain: domainPP0},
		{name: "uncore", domain: domainPP1},
		{name: "dram", domain: domainDRAM},
		{name: "psys", domain: domainPlatform},
		{name: "package-", err: `cannot read the package number ""`},
		{name: "package-x", err: `cannot read the package number "x"`},
		{name: "gpu", err: `unknown RAPL powercap zone "gpu"`},
		{name: "", err: `unknown RAPL powercap zone ""`},
		{name: "Package-0", err: `unknown RAPL powercap zone "Package-0"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, s, has, err := zoneDomain(tt.name)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.domain, d)
			require.Equal(t, tt.socket, s)
			require.Equal(t, tt.hasSocket, has)
		})
	}
}

func TestDomainResources(t *testing.T) {
	tests := []struct {
		d        domain
		attr     string
		total    string
		resource measure.Resource
	}{
		{domainPackage, "package", "package_total", measure.Resource{Kind: "cpu_package", ID: "1"}},
		{domainPP0, "pp0", "pp0_total", measure.Resource{Kind: "cpu_package", ID: "1"}},
		{domainPP1, "pp1", "pp1_total", measure.Resource{Kind: "cpu_package", ID: "1"}},
		{domainDRAM, "dram", "dram_total", measure.Resource{Kind: "dram", ID: "1"}},
		{domainPlatform, "platform", "platform_total", measure.LocalMachine},
	}
	for _, tt := range tests {
		require.Equal(t, tt.attr, tt.d.String())
		require.Equal(t, tt.total, tt.d.total())
		require.Equal(t, tt.resource, tt.d.resource(1))
	}
	var s domainSet
	require.Equal(t, "none", s.String())
	s.add(domainDRAM)
	s.add(domainPackage)
	require.Equal(t, "package, dram", s.String())
}

func TestPerfEventFiles(t *testing.T) {
	tests := []struct {
		file   string
		name   string
		ok     bool
		domain domain
		err    string
	}{
		{file: "energy-pkg", name: "pkg", ok: true, domain: domainPackage},
		{file: "energy-cores", name: "cores", ok: true, domain: domainPP0},
		{file: "energy-gpu", name: "gpu", ok: true, domain: domainPP1},
		{file: "energy-ram", name: "ram", ok: true, domain: domainDRAM},
		{file: "energy-psys", name: "psys", ok: true, domain: domainPlatform},
		{file: "energy-pkg.scale"},
		{file: "energy-pkg.unit"},
		{file: "energy-"},
		{file: "cycles"},
		{file: "energy-foo", name: "foo", ok: true, err: "unknown RAPL perf event energy-foo"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			name, ok := perfEventName(tt.file)
			require.Equal(t, tt.ok, ok)
			require.Equal(t, tt.name, name)
			if !ok {
				return
			}
			d, err := perfDomain(name)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.domain, d)
		})
	}
}

func TestParseEventFiles(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want uint64
		err  bool
	}{
		{"event=0x02\n", 2, false}, {"event=0x1f", 0x1f, false}, {"event=0x", 0, true},
		{"event=2", 0, true}, {"config=0x02", 0, true}, {"", 0, true}, {"event=0xzz", 0, true},
	} {
		got, err := parseEventConfig(tt.in)
		if tt.err {
			require.Error(t, err, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		require.Equal(t, tt.want, got, tt.in)
	}
	for _, tt := range []struct {
		in   string
		want float64
		err  bool
	}{
		{"2.3283064365386962890625e-10\n", math.Ldexp(1, -32), false}, {"1", 1, false},
		{"0", 0, true}, {"-1e-3", 0, true}, {"NaN", 0, true}, {"inf", 0, true}, {"x", 0, true},
	} {
		got, err := parseScale(tt.in)
		if tt.err {
			require.Error(t, err, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		require.Equal(t, tt.want, got, tt.in)
	}
	for _, tt := range []struct {
		in   string
		want []int
		err  bool
	}{
		{"0\n", []int{0}, false}, {"0,64", []int{0, 64}, false}, {"0-1,64-66", []int{0, 1, 64, 65, 66}, false},
		{"", nil, true}, {"1-0", nil, true}, {"a", nil, true}, {"0-70000", nil, true}, {"0,,1", nil, true},
	} {
		got, err := parseCPUList(tt.in)
		if tt.err {
			require.Error(t, err, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		require.Equal(t, tt.want, got, tt.in)
	}
	for _, tt := range []struct {
		in   string
		want uint64
		err  bool
	}{
		{"212143328850\n", 212143328850, false}, {"0", 0, false}, {"00000000000000000042\n", 42, false},
		{"18446744073709551615", math.MaxUint64, false}, {"18446744073709551616", 0, true},
		{"", 0, true}, {"\n", 0, true}, {" 1", 0, true}, {"-1", 0, true},
	} {
		got, err := parseCounter([]byte(tt.in))
		if tt.err {
			require.Error(t, err, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		require.Equal(t, tt.want, got, tt.in)
	}
}

// FuzzZoneAndEventNames: the parsers of zone names and of the perf event
// files never panic, and what they accept is what they claim.
func FuzzZoneAndEventNames(f *testing.F) {
	for _, s := range []string{"package-0", "package-1", "core", "uncore", "dram", "psys", "package-", "package-99999999999",
		"energy-pkg", "energy-pkg.scale", "event=0x02", "2.3283064365386962890625e-10", "0-1,64-66", "262143328850\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, sock, has, err := zoneDomain(s); err == nil {
			require.Less(t, d, numDomains)
			require.Equal(t, has, d == domainPackage)
			if has {
				n, err := strconv.ParseUint(strings.TrimPrefix(s, "package-"), 10, 31)
				require.NoError(t, err)
				require.Equal(t, uint64(sock), n)
			}
		} else {
			require.Contains(t, err.Error(), strconv.Quote(s))
		}
		if name, ok := perfEventName(s); ok {
			require.Equal(t, "energy-"+name, s)
			require.NotContains(t, name, ".")
			if d, err := perfDomain(name); err == nil {
				require.Less(t, d, numDomains)
			}
		}
		if c, err := parseEventConfig(s); err == nil {
			require.True(t, strings.HasPrefix(strings.TrimSpace(s), "event=0x"), s)
			_ = c
		}
		if v, err := parseScale(s); err == nil {
			require.Greater(t, v, 0.0)
			require.False(t, math.IsInf(v, 0))
		}
		if cpus, err := parseCPUList(s); err == nil {
			require.NotEmpty(t, cpus)
			require.LessOrEqual(t, len(cpus), maxCPUs)
		}
		if v, err := parseCounter([]byte(s)); err == nil {
			require.Equal(t, strings.TrimLeft(strings.TrimRight(s, "\n"), "0"), strings.TrimLeft(strconv.FormatUint(v, 10), "0"))
		}
	})
}
