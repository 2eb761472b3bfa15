// Package powerplot draws the power plot of the energy report: power (W)
// against time, one line per (node, metric), with the measured window, the
// repeated runs, the phases and the baselines marked, and a title the caller
// composes (typically with the total energy).
//
// The picture is drawn with gonum.org/v1/plot and its embedded Liberation
// fonts, so no browser and no system font is needed. The output format is
// PNG or SVG, chosen by the file extension in [Write] or by name in [Render].
//
// Long series are reduced before drawing: each line keeps, for every
// horizontal pixel column, the sample with the lowest and the one with the
// highest power (in time order), so peaks and dips stay visible while a 2 h
// run at 100 Hz on 32 nodes draws about 2 points per pixel column and line.
// A step between two samples longer than twice the line's median step is a
// gap: the line is broken there instead of bridging it with a straight
// segment. Samples whose power is NaN or infinite are dropped and also
// break the line.
//
// See README.md in this folder for a description of the picture.
package powerplot

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Line is one plotted series: the power of one metric on one node.
type Line struct {
	// Node and Metric name the line. The legend shows "node metric", or
	// only "node" when every line of the figure has the same metric (the
	// y-axis label then names the metric).
	Node, Metric string
	// Times are the sample times in Unix nanoseconds. They should be
	// ascending; unordered samples are sorted (on a copy) before drawing.
	Times []int64
	// Watts are the power samples, one per time. NaN and infinite values
	// are skipped and break the line.
	Watts []float64
	// MaxStep: a step between consecutive samples longer than this breaks
	// the line. 0: twice the median step (the default); negative: no
	// step breaks it, only NaN values do (a line already reduced, whose
	// gaps are marked with NaN).
	MaxStep time.Duration
}

// Span is a labelled time interval: the measured window, a run or a phase.
// A span whose Start or End is the zero time is ignored; End before Start
// is swapped.
type Span struct {
	Label      string
	Start, End time.Time
}

// Level is a baseline: a constant power drawn as a dashed horizontal line.
//
// A level with a Node belongs to the lines of that node (and of that Metric,
// when Metric is set): it is drawn in their colour and its value is written
// in their legend entry. A level with an empty Node (or whose node and
// metric match no line) is global: drawn in dark grey across the plot and
// labelled on the plot at its right end.
type Level struct {
	Node, Metric string
	Watts        float64
}

// Figure is everything drawn on one power plot. The zero value renders an
// empty plot with a "no data" note.
type Figure struct {
	// Title is drawn at the top, e.g. "taurus-7 — 41.3 kJ
	// (wattmetre_power_watt)". Empty means no title line.
	Title string
	// Lines are the series; at most a few dozen are readable (32 is the
	// design target). Colours come from a 10-colour palette; lines beyond
	// the tenth reuse it with dashed, dotted and dash-dotted strokes.
	Lines []Line
	// Window is the measured window, shaded light grey with its bounds
	// drawn. Its Start is the origin of the time axis; when Window is
	// zero, the earliest sample (or span) is the origin. Its label is not
	// drawn.
	Window Span
	// Runs are the run windows of "exec --repeat". Each is shaded in
	// alternating blue tints and labelled above the plot with its Label,
	// or "run 1", "run 2", ... when the label is empty.
	Runs []Span
	// Phases are shaded in alternating light colours and labelled above
	// the plot with their Label, or "phase 1", ... when it is empty.
	Phases []Span
	// Baselines are drawn as dashed horizontal lines; see [Level].
	Baselines []Level
	// Width and Height are the picture size in pixels at 96 dpi: the PNG
	// is exactly Width x Height pixels, the SVG is Width*0.75 x
	// Height*0.75 points (the same size on a 96 dpi screen). Zero means
	// DefaultWidth and DefaultHeight. Text and strokes scale with the size.
	// Sizes below MinWidth x MinHeight or above MaxSide are an error.
	// With Panels, a zero Height is PanelHeight per panel (at most
	// MaxSide).
	Width, Height int
	// Panels, when set, are drawn one below the other, each as a figure of
	// its own (title, lines, spans, baselines, legend) over the full
	// width and an equal share of the height, under Title; the Lines,
	// spans and Baselines of the outer figure are then not drawn. The
	// panels' own sizes are ignored.
	Panels []Figure
}

// PanelHeight is the default height of one panel, in pixels.
const PanelHeight = 560

// Picture size limits, in pixels.
const (
	DefaultWidth  = 1600
	DefaultHeight = 900
	MinWidth      = 640
	MinHeight     = 360
	MaxSide       = 10000
)

// Errors wrapped by the functions of this package; test with errors.Is.
var (
	// ErrFormat reports an output format (or file extension) other than
	// png and svg.
	ErrFormat = errors.New("unsupported plot format")
	// ErrLengthMismatch reports a Line whose Times and Watts have
	// different lengths.
	ErrLengthMismatch = errors.New("times and watts have different lengths")
	// ErrSize reports a Width or Height out of range.
	ErrSize = errors.New("plot size out of range")
)

// formats are the accepted formats, as Render names them; the accepted file
// extensions are the same with a leading dot, in any case.
var formats = []string{"png", "svg"}

// Formats returns the accepted file extensions: ".png" and ".svg". Write
// accepts them in any letter case.
func Formats() []string {
	out := make([]string, len(formats))
	for i, f := range formats {
		out[i] = "." + f
	}
	return out
}

// CheckPath returns an error wrapping ErrFormat, naming the accepted
// extensions, when path does not end in .png or .svg (in any case). It
// looks at the name only, not at the file system; use it when validating a
// configuration.
func CheckPath(path string) error {
	_, err := formatOfPath(path)
	return err
}

func formatOfPath(path string) (string, error) {
	ext := filepath.Ext(path)
	f, ok := normFormat(ext)
	if !ok || ext == "" {
		return "", fmt.Errorf("powerplot: %q: extension %q: %w (use %s)",
			path, ext, ErrFormat, strings.Join(Formats(), " or "))
	}
	return f, nil
}

// normFormat maps "png", ".PNG", "svg", ... to "png" or "svg".
func normFormat(s string) (string, bool) {
	s = strings.ToLower(strings.TrimPrefix(s, "."))
	for _, f := range formats {
		if s == f {
			return f, true
		}
	}
	return "", false
}

// Write renders f to path, in the format its extension names (.png or .svg,
// any case). It writes a temporary file in the same directory and renames
// it over path, so path is either left untouched or completely written;
// the temporary file is removed on error. The file gets mode 0644
// whatever the umask. Errors name the path and wrap the cause (ErrFormat,
// ErrLengthMismatch, ErrSize, or the file system error).
func Write(path string, f Figure) (err error) {
	format, err := formatOfPath(path)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("powerplot: writing %s: %w", path, err)
		}
	}()
	if err := validate(f); err != nil {
		return err
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(tmp, 256<<10)
	if err := renderTo(bw, format, f); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Render draws f and writes it to w in format "png" or "svg" (any case, a
// leading dot allowed). Nothing is written to w when f is invalid. Render
// does not retain f and does not modify its slices; it is safe to call
// from several goroutines at once. Errors wrap ErrFormat,
// ErrLengthMismatch, ErrSize or the error of w.
func Render(w io.Writer, format string, f Figure) error {
	fm, ok := normFormat(format)
	if !ok {
		return fmt.Errorf("powerplot: format %q: %w (use %s)", format, ErrFormat, strings.Join(formats, " or "))
	}
	if err := validate(f); err != nil {
		return fmt.Errorf("powerplot: %w", err)
	}
	if err := renderTo(w, fm, f); err != nil {
		return fmt.Errorf("powerplot: %w", err)
	}
	return nil
}

// renderTo renders a validated figure in format "png" or "svg".
func renderTo(w io.Writer, format string, f Figure) (err error) {
	defer func() {
		// gonum/plot reports some impossible drawings by panicking; a
		// plot is a by-product of the report and must not crash the agent.
		if r := recover(); r != nil {
			err = fmt.Errorf("rendering failed: %v", r)
		}
	}()
	cw, err := render(format, f)
	if err != nil {
		return err
	}
	_, err = cw.WriteTo(w)
	return err
}

// validate checks what Render cannot draw.
func validate(f Figure) error {
	for _, p := range f.Panels {
		p.Width, p.Height, p.Panels = MinWidth, MinHeight, nil
		if err := validate(p); err != nil {
			return err
		}
	}
	for i, l := range f.Lines {
		if len(l.Times) != len(l.Watts) {
			return fmt.Errorf("line %d (%q %q): %d times, %d watts: %w",
				i, l.Node, l.Metric, len(l.Times), len(l.Watts), ErrLengthMismatch)
		}
	}
	w, h := f.size()
	if w < MinWidth || h < MinHeight || w > MaxSide || h > MaxSide {
		return fmt.Errorf("%dx%d px: %w (min %dx%d, max %d per side)",
			w, h, ErrSize, MinWidth, MinHeight, MaxSide)
	}
	return nil
}

// size returns the picture size in pixels with the defaults applied.
func (f Figure) size() (w, h int) {
	w, h = f.Width, f.Height
	if w == 0 {
		w = DefaultWidth
	}
	if h == 0 {
		h = DefaultHeight
		if n := len(f.Panels); n > 0 {
			h = min(max(n*PanelHeight, MinHeight), MaxSide)
		}
	}
	return w, h
}
