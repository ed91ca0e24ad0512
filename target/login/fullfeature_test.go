package login

import "testing"

func TestNegotiateFullFeature(t *testing.T) {
	for _, tc := range []struct {
		key, value string
		want       FullFeatureAnswer
	}{
		{"MaxRecvDataSegmentLength", "65536", FullFeatureAnswer{MaxRecvDSL: 65536}},
		{"MaxRecvDataSegmentLength", "0x200", FullFeatureAnswer{MaxRecvDSL: 512}},
		{"MaxRecvDataSegmentLength", "99999999", FullFeatureAnswer{MaxRecvDSL: 1<<24 - 1}},
		{"MaxRecvDataSegmentLength", "511", FullFeatureAnswer{Value: "Reject"}},
		{"MaxRecvDataSegmentLength", "lots", FullFeatureAnswer{Value: "Reject"}},
		{"MaxRecvDataSegmentLength", "", FullFeatureAnswer{Value: "Reject"}},
		{"HeaderDigest", "CRC32C", FullFeatureAnswer{Value: "Reject"}},
		{"MaxBurstLength", "65536", FullFeatureAnswer{Value: "Reject"}},
		{"TargetAlias", "x", FullFeatureAnswer{Value: "Reject"}},
		{"InitiatorAlias", "host1", FullFeatureAnswer{}},
		{"X-com.example.Foo", "1", FullFeatureAnswer{Value: "NotUnderstood"}},
		{"Nonsense", "1", FullFeatureAnswer{Value: "NotUnderstood"}},
	} {
		if got := NegotiateFullFeature(tc.key, tc.value); got != tc.want {
			t.Errorf("%s=%s: got %+v, want %+v", tc.key, tc.value, got, tc.want)
		}
	}
}
