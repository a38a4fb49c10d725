package tlsmgr

import (
	"context"
	"log/slog"
	"slices"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// newZapLogger returns a zap logger that forwards every entry to log's
// handler, so that certmagic and acmez (which log through zap) end up in the
// node's slog stream. The zap logger name ("certmagic", "certmagic.obtain",
// ...) becomes a "logger" attribute.
func newZapLogger(log *slog.Logger) *zap.Logger {
	return zap.New(&slogCore{h: log.Handler()}).Named("certmagic")
}

// slogCore is a zapcore.Core writing to a slog.Handler.
type slogCore struct {
	h     slog.Handler
	attrs []slog.Attr // from With
}

var _ zapcore.Core = (*slogCore)(nil)

func (c *slogCore) Enabled(l zapcore.Level) bool {
	return c.h.Enabled(context.Background(), slogLevel(l))
}

func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	return &slogCore{h: c.h, attrs: append(slices.Clip(c.attrs), zapAttrs(fields)...)}
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	r := slog.NewRecord(e.Time, slogLevel(e.Level), e.Message, 0)
	if e.LoggerName != "" {
		r.AddAttrs(slog.String("logger", e.LoggerName))
	}
	r.AddAttrs(c.attrs...)
	r.AddAttrs(zapAttrs(fields)...)
	return c.h.Handle(context.Background(), r)
}

func (c *slogCore) Sync() error { return nil }

// slogLevel maps zap levels onto slog's four levels; DPanic, Panic and Fatal
// become Error (the core never panics or exits: zap does that itself after
// writing, and certmagic does not use those levels).
func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l <= zapcore.DebugLevel:
		return slog.LevelDebug
	case l == zapcore.InfoLevel:
		return slog.LevelInfo
	case l == zapcore.WarnLevel:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

// zapAttrs converts zap fields to slog attributes in order. Fields whose key
// mentions an e-mail address or an ACME account contact are redacted: the
// node never logs e-mail addresses at info level, and certmagic does.
func zapAttrs(fields []zapcore.Field) []slog.Attr {
	attrs := make([]slog.Attr, 0, len(fields))
	for _, f := range fields {
		enc := zapcore.NewMapObjectEncoder()
		f.AddTo(enc)
		keys := make([]string, 0, len(enc.Fields))
		for k := range enc.Fields {
			keys = append(keys, k)
		}
		slices.Sort(keys) // usually one key; "errorVerbose" may follow "error"
		for _, k := range keys {
			if sensitiveKey(k) {
				attrs = append(attrs, slog.String(k, "[redacted]"))
				continue
			}
			v := enc.Fields[k]
			if k == "error" {
				k = "err" // the node's one key for errors, certmagic's too
			}
			attrs = append(attrs, slog.Any(k, v))
		}
	}
	return attrs
}

func sensitiveKey(k string) bool {
	k = strings.ToLower(k)
	return strings.Contains(k, "email") || strings.Contains(k, "contact")
}
