package proto

import (
	"errors"
	"strings"
	"testing"
)

const (
	testRoom   = "r-nabcdefgh-abcdefghijklmnop"
	testUser   = "u-nabcdefgh-abcdefghijklmnop"
	testDevice = testUser + "/d-abcdefghijklmnop"
)

func TestValidateMLSFrames(t *testing.T) {
	for _, c := range []struct {
		name, frame, code string
	}{
		{"key packages", `{"t":"key_packages","id":"1","key_packages":["AAAA"]}`, ""},
		{"last resort only", `{"t":"key_packages","id":"1","last_resort":"AAAA"}`, ""},
		{"nothing to upload", `{"t":"key_packages","id":"1"}`, CodeBadRequest},
		{"empty package", `{"t":"key_packages","id":"1","key_packages":[""]}`, CodeBadRequest},
		{"too many packages", `{"t":"key_packages","id":"1","key_packages":[` + strings.Repeat(`"A",`, MaxKeyPackagesPerFrame) + `"A"]}`, CodeTooLarge},
		{"no id", `{"t":"key_packages","key_packages":["AAAA"]}`, CodeBadRequest},
		{"claim", `{"t":"claim_keys","id":"1","users":["` + testUser + `"],"suite":83}`, ""},
		{"claim nobody", `{"t":"claim_keys","id":"1","users":[]}`, CodeBadRequest},
		{"claim a bad user", `{"t":"claim_keys","id":"1","users":["bob"]}`, CodeBadRequest},
		{"suite out of range", `{"t":"claim_keys","id":"1","users":["` + testUser + `"],"suite":70000}`, CodeBadFrame},
		{"device keys", `{"t":"device_keys","id":"1","users":["` + testUser + `"]}`, ""},
		{"commit", `{"t":"mls","id":"1","room":"` + testRoom + `","data":"AAAA","group_info":"AAAA","welcome":"AAAA","removes":["` + testDevice + `"]}`, ""},
		{"commit without group info", `{"t":"mls","id":"1","room":"` + testRoom + `","data":"AAAA"}`, CodeBadRequest},
		{"commit without room", `{"t":"mls","id":"1","data":"AAAA","group_info":"AAAA"}`, CodeBadRequest},
		{"remove a user", `{"t":"mls","id":"1","room":"` + testRoom + `","data":"A","group_info":"A","removes":["` + testUser + `"]}`, CodeBadRequest},
		{"remove a device of nobody", `{"t":"mls","id":"1","room":"` + testRoom + `","data":"A","group_info":"A","removes":["/d-abcdefghijklmnop"]}`, CodeBadRequest},
		{"unknown field", `{"t":"mls","id":"1","room":"` + testRoom + `","data":"A","group_info":"A","adds":[]}`, CodeBadFrame},
		{"group info", `{"t":"group_info","id":"1","room":"` + testRoom + `"}`, ""},
		{"welcome ack without id", `{"t":"welcome_ack","room":"` + testRoom + `"}`, ""},
		{"welcome ack without room", `{"t":"welcome_ack","id":"1"}`, CodeBadRequest},
	} {
		_, err := DecodeClient([]byte(c.frame))
		got := ""
		if e := AsError(err); e != nil {
			got = e.Code
		} else if err != nil {
			t.Fatalf("%s: %v is not an *Error", c.name, err)
		}
		if got != c.code {
			t.Errorf("%s: %q (%v), want %q", c.name, got, err, c.code)
		}
	}
}

func TestErrorFrameCarriesEpochAndDevices(t *testing.T) {
	got := string(ErrorFrameOf("q1", EpochMismatch(0)))
	if !strings.Contains(got, `"code":"epoch_mismatch"`) || !strings.Contains(got, `"epoch":0`) {
		t.Errorf("epoch_mismatch at epoch 0: %s", got)
	}
	got = string(ErrorFrameOf("q2", RemovePending([]string{testDevice})))
	if !strings.Contains(got, `"devices":["`+testDevice+`"]`) || strings.Contains(got, `"epoch"`) {
		t.Errorf("remove_pending: %s", got)
	}
}

func FuzzDecodeMLSFrames(f *testing.F) {
	for _, s := range []string{
		`{"t":"mls","id":"1","room":"` + testRoom + `","data":"AAAA","group_info":"AAAA","removes":["` + testDevice + `"]}`,
		`{"t":"key_packages","id":"1","key_packages":["AAAA"],"last_resort":"AAAA"}`,
		`{"t":"claim_keys","id":"1","users":["` + testUser + `"],"suite":1}`,
		`{"t":"welcome_ack","room":"` + testRoom + `"}`,
		`{"t":"send","id":"1","room":"` + testRoom + `","type":"encrypted","data":"AAAA"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := DecodeClient(b)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code == "" {
				t.Fatalf("error %v is not a protocol error", err)
			}
			return
		}
		if fr.T == TMLS {
			for _, d := range fr.Removes {
				if _, _, ok := ParseDeviceIdentity(d); !ok {
					t.Fatalf("accepted remove %q", d)
				}
			}
		}
	})
}

func FuzzParseDeviceIdentity(f *testing.F) {
	f.Add(testDevice)
	f.Add(testUser + "/" + testUser)
	f.Add("/")
	f.Fuzz(func(t *testing.T, s string) {
		user, device, ok := ParseDeviceIdentity(s)
		if ok && DeviceIdentity(user, device) != s {
			t.Fatalf("%q parses as %q, %q", s, user, device)
		}
	})
}
