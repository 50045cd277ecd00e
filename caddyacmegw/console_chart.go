package caddyacmegw

import "fmt"

// barChart is a bar chart laid out for an SVG drawn by the overview's
// template: positions in the SVG's own units, so that CSS scales it.
type barChart struct {
	Title  string
	Width  int
	Height int
	Bars   []chartBar
	Max    int
	Empty  bool
	// BaseY is the y of the axis the bars stand on.
	BaseY int
}

type chartBar struct {
	X, Y, W, H int
	Label      string
	Value      int
	// LabelX, LabelY place the label under the bar, ValueY the value
	// above it.
	LabelX, LabelY, ValueY int
	// Title is what a pointer on the bar and a screen reader tell.
	Title string
	// ShowLabel is false for labels left out so that they do not overlap.
	ShowLabel bool
}

// Every chart is drawn in the same units, so that all scale alike.
const (
	chartWidth  = 360
	chartHeight = 180
	chartTop    = 16
	chartBottom = 36
	chartMaxBar = 40
	// chartMargin leaves room for the first and last labels.
	chartMargin = 14
)

// newBarChart lays out one bar a label.
func newBarChart(title string, labels []string, values []int) barChart {
	c := barChart{Title: title, Width: chartWidth, Height: chartHeight, BaseY: chartHeight - chartBottom}
	space := chartMaxBar + 8
	if len(values) > 0 {
		space = min(space, (chartWidth-2*chartMargin)/len(values))
	}
	for _, v := range values {
		c.Max = max(c.Max, v)
	}
	c.Empty = c.Max == 0
	span := c.BaseY - chartTop
	// Every label when few, else about eight.
	every := max(1, (len(labels)+7)/8)
	for i, v := range values {
		h := 0
		if c.Max > 0 {
			h = v * span / c.Max
		}
		x := chartMargin + i*space
		c.Bars = append(c.Bars, chartBar{
			X: x + space/8, Y: c.BaseY - h, W: space - space/4, H: h,
			Label: labels[i], Value: v,
			LabelX: x + space/2, LabelY: c.BaseY + 14, ValueY: c.BaseY - h - 3,
			Title:     fmt.Sprintf("%s: %d", labels[i], v),
			ShowLabel: i%every == 0,
		})
	}
	return c
}
