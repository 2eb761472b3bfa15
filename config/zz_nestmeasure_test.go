package config

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

func genNested(size int) string {
	var b strings.Builder
	b.WriteString("[plugins.csv]\nx = ")
	depth := 0
	for b.Len()+depth < size {
		b.WriteString("{a = ")
		depth++
	}
	b.WriteString("1")
	b.WriteString(strings.Repeat("}", depth))
	b.WriteString("\n")
	return b.String()
}

func TestZZMeasure(t *testing.T) {
	size, _ := strconv.Atoi(os.Getenv("NEST_SIZE"))
	if size == 0 {
		t.Skip()
	}
	text := genNested(size)
	t0 := time.Now()
	var m map[string]any
	_, err := toml.Decode(text, &m)
	t.Logf("toml.Decode %d bytes: %v err=%v", len(text), time.Since(t0), err)
	t0 = time.Now()
	sc := scanKeyLines(text)
	t.Logf("scanKeyLines: %v (%d)", time.Since(t0), len(sc))
	if os.Getenv("NEST_FULL") == "" {
		return
	}
	o := Options{Specs: testSpecs(), Getenv: env{}.get, Logger: (&logs{}).logger()}
	o.setDefaults()
	ld := &Loaded{Path: "alumet-config.toml"}
	t0 = time.Now()
	err = loadText(ld, text, o, nil, false)
	t.Logf("loadText: %v err=%v", time.Since(t0), err)
}
