package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"runtime"
	"testing"
)

// halves returns a w×h image, left half a, right half b.
func halves(w, h int, a, b color.NRGBA) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := a
			if x >= w/2 {
				c = b
			}
			img.SetNRGBA(x, y, c)
		}
	}
	return img
}

var (
	red  = color.NRGBA{220, 20, 20, 255}
	blue = color.NRGBA{20, 20, 220, 255}
)

func encodePNG(t testing.TB, img image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// withOrientation inserts an EXIF segment with the orientation tag after
// the JPEG's SOI marker.
func withOrientation(jpg []byte, o uint16, bigEndian bool) []byte {
	var order binary.AppendByteOrder = binary.LittleEndian
	tiff := []byte("II*\x00")
	if bigEndian {
		order, tiff = binary.BigEndian, []byte("MM\x00*")
	}
	tiff = order.AppendUint32(tiff, 8)
	tiff = order.AppendUint16(tiff, 1)
	tiff = order.AppendUint16(tiff, 0x0112)
	tiff = order.AppendUint16(tiff, 3)
	tiff = order.AppendUint32(tiff, 1)
	tiff = order.AppendUint16(tiff, o)
	tiff = append(tiff, 0, 0, 0, 0, 0, 0) // value padding, next IFD
	seg := append([]byte("Exif\x00\x00"), tiff...)
	app1 := []byte{0xff, 0xe1, byte((len(seg) + 2) >> 8), byte(len(seg) + 2)}
	out := append([]byte{}, jpg[:2]...)
	out = append(out, app1...)
	out = append(out, seg...)
	return append(out, jpg[2:]...)
}

// pngHeader returns a PNG whose IHDR claims w×h, followed by a tiny IDAT.
func pngHeader(w, h uint32, depth, colorType byte) []byte {
	chunk := func(typ string, data []byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
		b = append(b, typ...)
		b = append(b, data...)
		return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(append([]byte(typ), data...)))
	}
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, depth, colorType, 0, 0, 0)
	out := []byte("\x89PNG\r\n\x1a\n")
	out = append(out, chunk("IHDR", ihdr)...)
	out = append(out, chunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})...)
	return append(out, chunk("IEND", nil)...)
}

func decodeThumb(t *testing.T, b []byte) image.Image {
	t.Helper()
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("thumbnail does not decode: %v", err)
	}
	return img
}

func near(c color.Color, want color.NRGBA) bool {
	r, g, b, _ := c.RGBA()
	d := func(x uint32, y uint8) bool { return int(x>>8)-int(y) < 40 && int(y)-int(x>>8) < 40 }
	return d(r, want.R) && d(g, want.G) && d(b, want.B)
}

func TestThumbnail(t *testing.T) {
	pal := image.NewPaletted(image.Rect(0, 0, 100, 50), color.Palette{red, blue})
	for i := range pal.Pix {
		pal.Pix[i] = uint8(i % 100 / 50)
	}
	var gifBuf bytes.Buffer
	gif.Encode(&gifBuf, pal, nil)
	alpha := halves(600, 300, color.NRGBA{255, 0, 0, 255}, color.NRGBA{0, 0, 255, 0})

	cases := []struct {
		name          string
		in            []byte
		ctype         string
		w, h          int // original, as displayed
		tw, th        int
		topLeft, btmR color.NRGBA
	}{
		{"png landscape", encodePNG(t, halves(1000, 500, red, blue)), "image/jpeg", 1000, 500, 320, 160, red, blue},
		{"jpeg portrait", encodeJPEG(t, halves(300, 900, red, blue)), "image/jpeg", 300, 900, 107, 320, red, blue},
		{"png with alpha", encodePNG(t, alpha), "image/png", 600, 300, 320, 160, red, color.NRGBA{}},
		{"small gif kept at size", gifBuf.Bytes(), "image/jpeg", 100, 50, 100, 50, red, blue},
		{"jpeg rotated 90° (EXIF 6)", withOrientation(encodeJPEG(t, halves(400, 200, red, blue)), 6, false), "image/jpeg", 200, 400, 160, 320, red, blue},
		{"jpeg rotated 270° (EXIF 8, big-endian)", withOrientation(encodeJPEG(t, halves(400, 200, red, blue)), 8, true), "image/jpeg", 200, 400, 160, 320, blue, red},
		{"jpeg upside down (EXIF 3)", withOrientation(encodeJPEG(t, halves(400, 200, red, blue)), 3, false), "image/jpeg", 400, 200, 320, 160, blue, red},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			thumb, ctype, w, h, err := Thumbnail(bytes.NewReader(tc.in), 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if ctype != tc.ctype || w != tc.w || h != tc.h {
				t.Fatalf("Thumbnail = %s %dx%d, want %s %dx%d", ctype, w, h, tc.ctype, tc.w, tc.h)
			}
			img := decodeThumb(t, thumb)
			b := img.Bounds()
			if b.Dx() != tc.tw || b.Dy() != tc.th {
				t.Fatalf("thumbnail %dx%d, want %dx%d", b.Dx(), b.Dy(), tc.tw, tc.th)
			}
			if !near(img.At(2, 2), tc.topLeft) {
				t.Errorf("top-left %v, want %v", img.At(2, 2), tc.topLeft)
			}
			if tc.btmR.A != 0 && !near(img.At(b.Dx()-3, b.Dy()-3), tc.btmR) {
				t.Errorf("bottom-right %v, want %v", img.At(b.Dx()-3, b.Dy()-3), tc.btmR)
			}
			if tc.btmR.A == 0 {
				if _, _, _, a := img.At(b.Dx()-3, b.Dy()-3).RGBA(); a != 0 {
					t.Errorf("transparent area has alpha %d", a)
				}
			}
		})
	}
}

func TestThumbnailRefuses(t *testing.T) {
	good := encodePNG(t, halves(64, 64, red, blue))
	jpg := encodeJPEG(t, halves(64, 64, red, blue))
	var gifBuf bytes.Buffer
	gif.Encode(&gifBuf, halves(64, 64, red, blue), nil)
	cases := []struct {
		name string
		in   []byte
		err  error
	}{
		{"decompression bomb PNG 100000x100000", pngHeader(100000, 100000, 8, 6), ErrImageTooLarge},
		{"50 Mpx", pngHeader(10000, 5000, 8, 2), ErrImageTooLarge},
		{"16-bit counts double", pngHeader(5000, 5000, 16, 6), ErrImageTooLarge},
		{"truncated png", good[:len(good)/2], ErrImageInvalid},
		{"truncated jpeg", jpg[:len(jpg)/2], ErrImageInvalid},
		{"truncated gif", gifBuf.Bytes()[:gifBuf.Len()/2], ErrImageInvalid},
		{"header only", good[:30], ErrImageInvalid},
		{"png without pixels", pngHeader(100, 100, 8, 6), ErrImageInvalid},
		{"zero size", pngHeader(0, 10, 8, 6), ErrImageInvalid},
		{"not an image", []byte("%PDF-1.4"), ErrImageInvalid},
		{"svg", []byte("<svg xmlns='http://www.w3.org/2000/svg'/>"), ErrImageInvalid},
		{"empty", nil, ErrImageInvalid},
	}
	for _, tc := range cases {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, _, _, _, err := Thumbnail(bytes.NewReader(tc.in), 0, 0)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
			continue
		}
		code := ErrorCode(err)
		if code != "image_too_large" && code != "image_invalid" {
			t.Errorf("%s: code %q", tc.name, code)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
			t.Errorf("%s: allocated %d bytes to refuse it", tc.name, alloc)
		}
		t.Logf("%s: %v", tc.name, err)
	}
	// The limit is the caller's.
	if _, _, _, _, err := Thumbnail(bytes.NewReader(good), 64*64-1, 0); !errors.Is(err, ErrImageTooLarge) {
		t.Errorf("maxPixels not honoured: %v", err)
	}
}

func FuzzExifOrientation(f *testing.F) {
	jpg := encodeJPEG(f, halves(8, 8, red, blue))
	f.Add(withOrientation(jpg, 6, false)[:200])
	f.Add(withOrientation(jpg, 8, true)[:200])
	f.Add([]byte{0xff, 0xd8, 0xff, 0xe1, 0x00, 0x02})
	f.Fuzz(func(t *testing.T, b []byte) {
		if o := exifOrientation(b); o < 1 || o > 8 {
			t.Fatalf("orientation %d", o)
		}
	})
}

func FuzzThumbnail(f *testing.F) {
	f.Add(encodePNG(f, halves(20, 10, red, blue)))
	f.Add(withOrientation(encodeJPEG(f, halves(20, 10, red, blue)), 5, false))
	f.Add(pngHeader(100000, 100000, 8, 6))
	var g bytes.Buffer
	gif.Encode(&g, halves(12, 12, red, blue), nil)
	f.Add(g.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		thumb, ctype, w, h, err := Thumbnail(bytes.NewReader(b), 1<<16, 32)
		if err != nil {
			if ErrorCode(err) != "image_invalid" && ErrorCode(err) != "image_too_large" {
				t.Fatalf("error without a code: %v", err)
			}
			return
		}
		if w <= 0 || h <= 0 || int64(w)*int64(h) > 1<<16 || len(thumb) == 0 || ctype == "" {
			t.Fatalf("Thumbnail = %d bytes %q %dx%d", len(thumb), ctype, w, h)
		}
	})
}

// TestImageSize: the one image sniffer reads the dimensions of the three
// formats from their headers and refuses anything else, including a
// header that claims no pixels.
func TestImageSize(t *testing.T) {
	img := halves(30, 20, red, blue)
	var gifBuf bytes.Buffer
	if err := gif.Encode(&gifBuf, img, nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		data []byte
		w, h int
		ok   bool
	}{
		{"png", encodePNG(t, img), 30, 20, true},
		{"jpeg", encodeJPEG(t, img), 30, 20, true},
		{"gif", gifBuf.Bytes(), 30, 20, true},
		{"huge png header", pngHeader(100_000, 100_000, 8, 6), 100_000, 100_000, true},
		{"png of no pixels", pngHeader(0, 10, 8, 6), 0, 0, false},
		{"text", []byte("not a picture at all"), 0, 0, false},
		{"png magic only", []byte("\x89PNG\r\n\x1a\n"), 0, 0, false},
		{"empty", nil, 0, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, h, err := ImageSize(bytes.NewReader(c.data))
			if c.ok != (err == nil) || w != c.w || h != c.h {
				t.Fatalf("ImageSize = %d×%d, %v; want %d×%d, ok %v", w, h, err, c.w, c.h, c.ok)
			}
			if err != nil && !errors.Is(err, ErrImageInvalid) {
				t.Fatalf("error %v is not ErrImageInvalid", err)
			}
		})
	}
}
