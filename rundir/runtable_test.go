package rundir

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

func TestRunTable(t *testing.T) {
	for _, tc := range []struct {
		name, summary string
		want          [][]string
	}{
		{"single run", `{"start":"S","end":"E","command":["x"],"exit_code":3,"total_energy_j":{},"series":[
			{"node":"n1","site":"lyon","metric":"m","samples":10,"coverage":1,"duration_s":2.5,"mean_w":100,"peak_w":101,"energy_j":250,"baseline_w":null,"dynamic_energy_j":null,"gaps":[],"method":"x","uncertainty_j":0.1},
			{"node":"n2","site":null,"metric":"m","samples":0,"coverage":0,"duration_s":2.5,"mean_w":null,"peak_w":null,"energy_j":null,"baseline_w":null,"dynamic_energy_j":null,"gaps":[],"method":"none","uncertainty_j":null}]}`,
			[][]string{RunTableHeader,
				{"0", "", "n1", "lyon", "m", "S", "E", "2.5", "10", "1", "250", "", "", "100", "3"},
				{"0", "", "n2", "", "m", "S", "E", "2.5", "0", "0", "", "", "", "", "3"}}},
		{"repeat with phases", `{"start":"S","end":"E","command":["x"],"runs":[{"run":1,"start":"S1","end":"E1","command":["x"],"exit_code":0,"total_energy_j":{},
			"series":[{"node":"n1","site":"lyon","metric":"m","samples":10,"coverage":0.5,"duration_s":2,"mean_w":100,"peak_w":101,"energy_j":200,"baseline_w":90,"dynamic_energy_j":20,"gaps":[],"method":"x","uncertainty_j":0.1}],
			"phases":[{"name":"load","start":"P","end":"Q","duration_s":1.5,"total_energy_j":{},"series":[{"node":"n1","metric":"m","samples":7,"coverage":1,"mean_w":110,"energy_j":165}]}]}],
			"stats_runs":[1],"stats":[]}`,
			[][]string{RunTableHeader,
				{"1", "", "n1", "lyon", "m", "S1", "E1", "2", "10", "0.5", "200", "90", "20", "100", "0"},
				{"1", "load", "n1", "lyon", "m", "P", "Q", "1.5", "7", "1", "165", "90", "30", "110", "0"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RunTable([]byte(tc.summary))
			require.NoError(t, err)
			require.Empty(t, cmp.Diff(tc.want, got))
		})
	}
	_, err := RunTable([]byte("{"))
	require.Error(t, err)
}

func TestWriteRunTable(t *testing.T) {
	dir := t.TempDir()
	sum := filepath.Join(dir, "energy.json")
	require.NoError(t, os.WriteFile(sum, []byte(`{"start":"S","end":"E","series":[{"node":"a,b","metric":"m","duration_s":1,"coverage":1}]}`), 0o644))
	out := filepath.Join(dir, "runs.csv")
	require.NoError(t, WriteRunTable(sum, out))
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, "run,phase,node,site,metric,start,end,duration_s,samples,coverage,energy_j,baseline_w,dynamic_j,mean_w,exit_code\n"+
		`0,,"a,b",,m,S,E,1,0,1,,,,,`+"\n", string(b), "quoted as CSV needs")
	require.ErrorContains(t, WriteRunTable(filepath.Join(dir, "nope.json"), out), "no such file")
}
