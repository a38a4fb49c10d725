package media

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
)

// Defaults of Thumbnail.
const (
	// DefaultMaxPixels bounds the images Thumbnail decodes (40 Mpx: a
	// decoded 8-bit RGBA image of that size takes 160 MB, so callers should
	// also bound how many thumbnails are made at once).
	DefaultMaxPixels = 40_000_000
	// DefaultThumbBox is the side of the square a thumbnail fits in.
	DefaultThumbBox = 320
	// maxImageHeader bounds the bytes read before the image dimensions
	// are known (JPEG metadata segments come first).
	maxImageHeader = 4 << 20
	thumbQuality   = 82
)

type imageFormat struct {
	name   string
	config func(io.Reader) (image.Config, error)
	decode func(io.Reader) (image.Image, error)
}

var imageFormats = []struct {
	magic string
	imageFormat
}{
	{"\x89PNG\r\n\x1a\n", imageFormat{"png", png.DecodeConfig, png.Decode}},
	{"\xff\xd8\xff", imageFormat{"jpeg", jpeg.DecodeConfig, jpeg.Decode}},
	{"GIF87a", imageFormat{"gif", gif.DecodeConfig, gif.Decode}},
	{"GIF89a", imageFormat{"gif", gif.DecodeConfig, gif.Decode}},
}

// imageConfig is the one image sniffer: it tells a PNG, JPEG or GIF by its
// magic and reads its header, at most maxImageHeader bytes of it, which it
// copies to header for a decoder to read again. An image that is none of
// these, or whose header does not parse or gives no pixels, is
// ErrImageInvalid.
func imageConfig(br *bufio.Reader, header io.Writer) (*imageFormat, image.Config, error) {
	magic, _ := br.Peek(8)
	var f *imageFormat
	for i := range imageFormats {
		if bytes.HasPrefix(magic, []byte(imageFormats[i].magic)) {
			f = &imageFormats[i].imageFormat
			break
		}
	}
	if f == nil {
		return nil, image.Config{}, fmt.Errorf("unknown format: %w", ErrImageInvalid)
	}
	limited := &io.LimitedReader{R: br, N: maxImageHeader}
	cfg, err := f.config(io.TeeReader(limited, header))
	if err != nil {
		if limited.N <= 0 {
			return nil, cfg, fmt.Errorf("%s header over %d bytes: %w", f.name, maxImageHeader, ErrImageInvalid)
		}
		return nil, cfg, fmt.Errorf("%s: %w: %w", f.name, ErrImageInvalid, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, cfg, fmt.Errorf("%s of %dx%d: %w", f.name, cfg.Width, cfg.Height, ErrImageInvalid)
	}
	return f, cfg, nil
}

// ImageSize reads the dimensions of a PNG, JPEG or GIF image from its
// header, without decoding pixels (the stored dimensions, before any EXIF
// orientation). Anything else is ErrImageInvalid.
func ImageSize(r io.Reader) (width, height int, err error) {
	_, cfg, err := imageConfig(bufio.NewReader(r), io.Discard)
	if err != nil {
		return 0, 0, fmt.Errorf("image size: %w", err)
	}
	return cfg.Width, cfg.Height, nil
}

// Thumbnail reads a PNG, JPEG or GIF image (the first frame of a GIF) and
// returns a thumbnail fitting a box×box square, never enlarged, as JPEG, or
// as PNG when it has transparency; width and height are the original
// image's dimensions as displayed (after the JPEG EXIF orientation, which
// the thumbnail also applies). Metadata is not copied.
//
// The dimensions are read first and an image above maxPixels (counting
// 16-bit-per-channel images double) is refused with ErrImageTooLarge
// before any pixel memory is allocated: a small file cannot make the node
// allocate gigabytes. A file that is not a readable image gives
// ErrImageInvalid. maxPixels and box default to DefaultMaxPixels and
// DefaultThumbBox when zero.
func Thumbnail(r io.Reader, maxPixels int, box int) (thumb []byte, contentType string, width, height int, err error) {
	if maxPixels <= 0 {
		maxPixels = DefaultMaxPixels
	}
	if box <= 0 {
		box = DefaultThumbBox
	}
	br := bufio.NewReader(r)
	// Read the header through a bounded tee, then decode from the
	// buffered header followed by the rest.
	var header bytes.Buffer
	f, cfg, err := imageConfig(br, &header)
	if err != nil {
		return nil, "", 0, 0, fmt.Errorf("thumbnail: %w", err)
	}
	pixels := int64(cfg.Width) * int64(cfg.Height)
	switch cfg.ColorModel {
	case color.RGBA64Model, color.NRGBA64Model:
		pixels *= 2
	}
	if pixels > int64(maxPixels) {
		return nil, "", 0, 0, fmt.Errorf("thumbnail: %s of %dx%d, limit %d pixels: %w", f.name, cfg.Width, cfg.Height, maxPixels, ErrImageTooLarge)
	}
	orientation := 1
	if f.name == "jpeg" {
		orientation = exifOrientation(header.Bytes())
	}
	img, err := f.decode(io.MultiReader(&header, br))
	if err != nil {
		return nil, "", 0, 0, fmt.Errorf("thumbnail: decode %s: %w: %w", f.name, ErrImageInvalid, err)
	}
	b := img.Bounds()
	if b.Dx() <= 0 || b.Dy() <= 0 {
		return nil, "", 0, 0, fmt.Errorf("thumbnail: empty %s: %w", f.name, ErrImageInvalid)
	}

	width, height = b.Dx(), b.Dy()
	if orientation >= 5 {
		width, height = height, width
	}
	tw, th := fit(width, height, box)
	if orientation >= 5 {
		tw, th = th, tw // scale in the stored orientation, then turn
	}
	small, opaque := downscale(img, tw, th)
	small = orient(small, orientation)

	var out bytes.Buffer
	if opaque {
		err = jpeg.Encode(&out, small, &jpeg.Options{Quality: thumbQuality})
		contentType = "image/jpeg"
	} else {
		enc := png.Encoder{CompressionLevel: png.BestSpeed}
		err = enc.Encode(&out, small)
		contentType = "image/png"
	}
	if err != nil {
		return nil, "", 0, 0, fmt.Errorf("thumbnail: encode: %w", err)
	}
	return out.Bytes(), contentType, width, height, nil
}

// fit returns the size of a w×h image scaled down to fit a box×box square.
func fit(w, h, box int) (int, int) {
	if w <= box && h <= box {
		return w, h
	}
	if w >= h {
		return box, max(1, (h*box+w/2)/w)
	}
	return max(1, (w*box+h/2)/h), box
}

// downscale reduces img to tw×th (no larger than img) by averaging the
// source pixels that fall in each target pixel (a box filter, in
// premultiplied alpha). It reports whether the result is fully opaque.
func downscale(img image.Image, tw, th int) (*image.NRGBA, bool) {
	b := img.Bounds()
	sw, sh := b.Dx(), b.Dy()
	// col[x] is the target column of source column x.
	col := make([]int32, sw)
	span := make([]int64, tw) // source columns per target column
	for tx := range tw {
		x0, x1 := tx*sw/tw, (tx+1)*sw/tw
		for x := x0; x < x1; x++ {
			col[x] = int32(tx)
		}
		span[tx] = int64(x1 - x0)
	}
	row := make([]uint32, 4*sw)
	acc := make([]uint64, 4*tw)
	read := rowReader(img)
	dst := image.NewNRGBA(image.Rect(0, 0, tw, th))
	opaque := true
	for ty := range th {
		y0, y1 := ty*sh/th, (ty+1)*sh/th
		clear(acc)
		for y := y0; y < y1; y++ {
			read(b.Min.Y+y, row)
			for x := range sw {
				a := acc[4*col[x]:]
				p := row[4*x:]
				a[0] += uint64(p[0])
				a[1] += uint64(p[1])
				a[2] += uint64(p[2])
				a[3] += uint64(p[3])
			}
		}
		out := dst.Pix[ty*dst.Stride:]
		for tx := range tw {
			n := span[tx] * int64(y1-y0)
			a := acc[4*tx:]
			alpha := a[3] / uint64(n)
			o := out[4*tx:]
			if alpha == 0 {
				o[0], o[1], o[2], o[3] = 0, 0, 0, 0
				opaque = false
				continue
			}
			// Un-premultiply: the average colour over the average alpha.
			o[0] = uint8(min(a[0]*0xffff/(alpha*uint64(n)), 0xffff) >> 8)
			o[1] = uint8(min(a[1]*0xffff/(alpha*uint64(n)), 0xffff) >> 8)
			o[2] = uint8(min(a[2]*0xffff/(alpha*uint64(n)), 0xffff) >> 8)
			o[3] = uint8(alpha >> 8)
			if o[3] != 0xff {
				opaque = false
			}
		}
	}
	return dst, opaque
}

// rowReader returns a function that writes row y of img (absolute
// coordinate) as premultiplied 16-bit R, G, B, A values, with fast paths
// for the types the standard decoders return.
func rowReader(img image.Image) func(y int, dst []uint32) {
	b := img.Bounds()
	switch m := img.(type) {
	case *image.YCbCr:
		return func(y int, dst []uint32) {
			for x := b.Min.X; x < b.Max.X; x++ {
				yi, ci := m.YOffset(x, y), m.COffset(x, y)
				r, g, bl := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
				d := dst[4*(x-b.Min.X):]
				d[0], d[1], d[2], d[3] = uint32(r)*0x101, uint32(g)*0x101, uint32(bl)*0x101, 0xffff
			}
		}
	case *image.RGBA:
		return func(y int, dst []uint32) {
			p := m.Pix[m.PixOffset(b.Min.X, y):]
			for i := range b.Dx() {
				d, s := dst[4*i:], p[4*i:]
				d[0], d[1], d[2], d[3] = uint32(s[0])*0x101, uint32(s[1])*0x101, uint32(s[2])*0x101, uint32(s[3])*0x101
			}
		}
	case *image.NRGBA:
		return func(y int, dst []uint32) {
			p := m.Pix[m.PixOffset(b.Min.X, y):]
			for i := range b.Dx() {
				d, s := dst[4*i:], p[4*i:]
				a := uint32(s[3]) * 0x101
				d[0], d[1], d[2], d[3] = uint32(s[0])*a/0xff, uint32(s[1])*a/0xff, uint32(s[2])*a/0xff, a
			}
		}
	case *image.Gray:
		return func(y int, dst []uint32) {
			p := m.Pix[m.PixOffset(b.Min.X, y):]
			for i := range b.Dx() {
				v := uint32(p[i]) * 0x101
				d := dst[4*i:]
				d[0], d[1], d[2], d[3] = v, v, v, 0xffff
			}
		}
	case *image.Paletted:
		pal := make([][4]uint32, 256)
		for i, c := range m.Palette {
			r, g, bl, a := c.RGBA()
			pal[i] = [4]uint32{r, g, bl, a}
		}
		return func(y int, dst []uint32) {
			p := m.Pix[m.PixOffset(b.Min.X, y):]
			for i := range b.Dx() {
				c := pal[p[i]]
				d := dst[4*i:]
				d[0], d[1], d[2], d[3] = c[0], c[1], c[2], c[3]
			}
		}
	}
	return func(y int, dst []uint32) {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			d := dst[4*(x-b.Min.X):]
			d[0], d[1], d[2], d[3] = r, g, bl, a
		}
	}
}

// orient applies an EXIF orientation (1–8) to img.
func orient(img *image.NRGBA, o int) *image.NRGBA {
	if o < 2 || o > 8 {
		return img
	}
	w, h := img.Rect.Dx(), img.Rect.Dy()
	dw, dh := w, h
	if o >= 5 {
		dw, dh = h, w
	}
	dst := image.NewNRGBA(image.Rect(0, 0, dw, dh))
	for dy := range dh {
		for dx := range dw {
			var sx, sy int
			switch o {
			case 2:
				sx, sy = w-1-dx, dy
			case 3:
				sx, sy = w-1-dx, h-1-dy
			case 4:
				sx, sy = dx, h-1-dy
			case 5:
				sx, sy = dy, dx
			case 6:
				sx, sy = dy, h-1-dx
			case 7:
				sx, sy = w-1-dy, h-1-dx
			case 8:
				sx, sy = w-1-dy, dx
			}
			copy(dst.Pix[dst.PixOffset(dx, dy):][:4], img.Pix[img.PixOffset(sx, sy):][:4])
		}
	}
	return dst
}

// exifOrientation returns the orientation tag (1–8) of the EXIF metadata
// in the JPEG header b, or 1 when there is none or it is malformed.
func exifOrientation(b []byte) int {
	if len(b) < 4 || b[0] != 0xff || b[1] != 0xd8 {
		return 1
	}
	for p := 2; p+4 <= len(b); {
		if b[p] != 0xff {
			return 1
		}
		marker := b[p+1]
		if marker == 0xff { // fill byte
			p++
			continue
		}
		if marker == 0xd8 || marker >= 0xd0 && marker <= 0xd7 || marker == 0x01 {
			p += 2 // markers without a length
			continue
		}
		if marker == 0xda || marker == 0xd9 {
			return 1 // image data: metadata comes before
		}
		n := int(b[p+2])<<8 | int(b[p+3])
		if n < 2 || p+2+n > len(b) {
			return 1
		}
		seg := b[p+4 : p+2+n]
		if marker == 0xe1 && bytes.HasPrefix(seg, []byte("Exif\x00\x00")) {
			if o, err := tiffOrientation(seg[6:]); err == nil {
				return o
			}
			return 1
		}
		p += 2 + n
	}
	return 1
}

// tiffOrientation reads tag 0x0112 of the first IFD of a TIFF structure.
func tiffOrientation(t []byte) (int, error) {
	if len(t) < 8 {
		return 0, errors.New("short")
	}
	var u16 func([]byte) uint16
	var u32 func([]byte) uint32
	switch string(t[:2]) {
	case "II":
		u16, u32 = le16, le32
	case "MM":
		u16 = func(b []byte) uint16 { return uint16(b[0])<<8 | uint16(b[1]) }
		u32 = func(b []byte) uint32 { return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) }
	default:
		return 0, errors.New("byte order")
	}
	if u16(t[2:]) != 42 {
		return 0, errors.New("magic")
	}
	off := int64(u32(t[4:]))
	if off+2 > int64(len(t)) {
		return 0, errors.New("IFD out of bounds")
	}
	n := int64(u16(t[off:]))
	for i := range n {
		e := off + 2 + 12*i
		if e+12 > int64(len(t)) {
			return 0, errors.New("entry out of bounds")
		}
		if u16(t[e:]) != 0x0112 {
			continue
		}
		if u16(t[e+2:]) != 3 || u32(t[e+4:]) != 1 {
			return 0, errors.New("orientation type")
		}
		o := int(u16(t[e+8:]))
		if o < 1 || o > 8 {
			return 0, errors.New("orientation value")
		}
		return o, nil
	}
	return 0, errors.New("no orientation")
}
