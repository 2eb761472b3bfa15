package powerplot

import (
	"image/color"
	"math"

	stdfont "golang.org/x/image/font"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// palette holds clearly distinct line colours on a white or light grey
// background (the category-10 colours without their grey, plus near-black).
var palette = []color.NRGBA{
	{0x1f, 0x77, 0xb4, 0xff}, // blue
	{0xff, 0x7f, 0x0e, 0xff}, // orange
	{0x2c, 0xa0, 0x2c, 0xff}, // green
	{0xd6, 0x27, 0x28, 0xff}, // red
	{0x94, 0x67, 0xbd, 0xff}, // purple
	{0x8c, 0x56, 0x4b, 0xff}, // brown
	{0xe3, 0x77, 0xc2, 0xff}, // pink
	{0x17, 0xbe, 0xcf, 0xff}, // cyan
	{0xbc, 0xbd, 0x22, 0xff}, // olive
	{0x26, 0x26, 0x26, 0xff}, // near-black
}

// dashes are the stroke patterns (in points, before scaling), used in turn
// each time the palette is exhausted: lines 1-10 solid, 11-20 dashed,
// 21-30 dotted, 31-40 dash-dotted, then again.
var dashes = [][]vg.Length{
	nil,
	{7, 3},
	{1.5, 2},
	{7, 2.5, 1.5, 2.5},
}

var (
	windowFill   = color.NRGBA{0, 0, 0, 16}
	windowEdge   = color.NRGBA{110, 110, 110, 255}
	runFills     = []color.NRGBA{{33, 110, 200, 24}, {33, 110, 200, 48}}
	runEdge      = color.NRGBA{33, 90, 170, 140}
	phaseFills   = []color.NRGBA{{255, 179, 0, 46}, {67, 160, 71, 40}, {142, 36, 170, 30}, {233, 30, 99, 30}}
	gridColor    = color.NRGBA{0, 0, 0, 30}
	globalBase   = color.NRGBA{70, 70, 70, 255}
	noteColor    = color.NRGBA{120, 120, 120, 255}
	textColor    = color.NRGBA{20, 20, 20, 255}
	baselineDash = []vg.Length{4, 3}
)

// style holds the sizes of one figure, scaled with the picture size.
type style struct {
	scale     float64
	title     text.Style
	axisLabel text.Style
	tick      text.Style
	legend    text.Style
	tag       text.Style
	note      text.Style
	lineWidth vg.Length
}

var (
	sansFont = font.Font{Typeface: "Liberation", Variant: "Sans"}
	boldFont = font.Font{Typeface: "Liberation", Variant: "Sans", Weight: stdfont.WeightBold}
)

func textStyle(f font.Font, size float64, c color.Color) text.Style {
	return text.Style{
		Color:   c,
		Font:    font.From(f, font.Length(size)),
		Handler: plot.DefaultTextHandler,
	}
}

// newStyle returns the style of a wpx x hpx picture with nLines lines.
func newStyle(wpx, hpx, nLines int) style {
	s := math.Min(float64(wpx)/DefaultWidth, float64(hpx)/DefaultHeight)
	s = math.Max(0.6, math.Min(s, 3))
	legendSize := 11.0
	switch {
	case nLines > 16:
		legendSize = 9
	case nLines > 8:
		legendSize = 10
	}
	lw := 1.4
	switch {
	case nLines > 12:
		lw = 0.9
	case nLines > 4:
		lw = 1.1
	}
	st := style{
		scale:     s,
		title:     textStyle(boldFont, 15*s, textColor),
		axisLabel: textStyle(sansFont, 12*s, textColor),
		tick:      textStyle(sansFont, 10*s, textColor),
		legend:    textStyle(sansFont, legendSize*s, textColor),
		tag:       textStyle(sansFont, 9.5*s, textColor),
		note:      textStyle(sansFont, 16*s, noteColor),
		lineWidth: vg.Length(lw * s),
	}
	st.title.XAlign, st.title.YAlign = draw.XCenter, draw.YTop
	st.tag.XAlign, st.tag.YAlign = draw.XCenter, draw.YCenter
	st.note.XAlign, st.note.YAlign = draw.XCenter, draw.YCenter
	st.legend.YAlign = draw.YCenter
	return st
}

// lineStyle returns the stroke of the i-th line.
func (st style) lineStyle(i int) draw.LineStyle {
	ls := draw.LineStyle{
		Color: palette[i%len(palette)],
		Width: st.lineWidth,
	}
	if d := dashes[(i/len(palette))%len(dashes)]; d != nil {
		ls.Dashes = st.scaled(d)
	}
	return ls
}

// baselineStyle returns the dashed stroke of a baseline of colour c.
func (st style) baselineStyle(c color.Color) draw.LineStyle {
	return draw.LineStyle{Color: c, Width: vg.Length(1.1 * st.scale), Dashes: st.scaled(baselineDash)}
}

func (st style) scaled(d []vg.Length) []vg.Length {
	out := make([]vg.Length, len(d))
	for i, v := range d {
		out[i] = v * vg.Length(st.scale)
	}
	return out
}

// pt scales a length given in points for the default picture size.
func (st style) pt(v float64) vg.Length { return vg.Length(v * st.scale) }
