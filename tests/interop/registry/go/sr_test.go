// franz-go's sr package against a strand registry: register, look up, evolve a schema under
// BACKWARD, frame records with the registered id, and be refused an incompatible change
// with 409. Needs REGISTRY_URL (tests/interop/registry/run sets it).
package registryinterop

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
)

const subject = "interop-go-value"

func user(extra ...map[string]any) string {
	fields := []map[string]any{{"name": "id", "type": "long"}, {"name": "name", "type": "string"}}
	fields = append(fields, extra...)
	b, _ := json.Marshal(map[string]any{"type": "record", "name": "GoUser", "namespace": "interop", "fields": fields})
	return string(b)
}

type goUser struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

func TestRegistryWithFranzGoSr(t *testing.T) {
	url := os.Getenv("REGISTRY_URL")
	if url == "" {
		t.Skip("REGISTRY_URL not set")
	}
	ctx := context.Background()
	cl, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		t.Fatal(err)
	}

	v1 := sr.Schema{Schema: user(), Type: sr.TypeAvro}
	created, err := cl.CreateSchema(ctx, subject, v1)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if created.Version != 1 || created.Subject != subject {
		t.Fatalf("created %+v", created)
	}
	byID, err := cl.SchemaByID(ctx, created.ID)
	if err != nil || byID.Schema != v1.Schema {
		t.Fatalf("by id: %+v %v", byID, err)
	}
	found, err := cl.LookupSchema(ctx, subject, v1)
	if err != nil || found.ID != created.ID || found.Version != 1 {
		t.Fatalf("lookup: %+v %v", found, err)
	}
	if got := cl.Compatibility(ctx); got[0].Err != nil || got[0].Level != sr.CompatBackward {
		t.Fatalf("global compatibility: %+v", got)
	}

	// Records framed with the registered id: magic 0, the id big-endian, then the payload.
	var serde sr.Serde
	serde.Register(created.ID, goUser{},
		sr.EncodeFn(func(v any) ([]byte, error) { return json.Marshal(v) }),
		sr.DecodeFn(func(b []byte, v any) error { return json.Unmarshal(b, v) }))
	framed, err := serde.Encode(goUser{ID: 7, Name: "ada"})
	if err != nil || framed[0] != 0 || int(binary.BigEndian.Uint32(framed[1:5])) != created.ID {
		t.Fatalf("encode: %x %v", framed, err)
	}
	var back goUser
	if err := serde.Decode(framed, &back); err != nil || back != (goUser{ID: 7, Name: "ada"}) {
		t.Fatalf("decode: %+v %v", back, err)
	}

	v2 := sr.Schema{Schema: user(map[string]any{"name": "email", "type": []any{"null", "string"}, "default": nil}), Type: sr.TypeAvro}
	if check, err := cl.CheckCompatibility(ctx, subject, -1, v2); err != nil || !check.Is {
		t.Fatalf("check v2: %+v %v", check, err)
	}
	second, err := cl.CreateSchema(ctx, subject, v2)
	if err != nil || second.Version != 2 || second.ID == created.ID {
		t.Fatalf("create v2: %+v %v", second, err)
	}

	breaking := sr.Schema{Schema: user(map[string]any{"name": "age", "type": "int"}), Type: sr.TypeAvro}
	check, err := cl.CheckCompatibility(ctx, subject, -1, breaking)
	if err != nil || check.Is {
		t.Fatalf("check breaking: %+v %v", check, err)
	}
	_, err = cl.CreateSchema(ctx, subject, breaking)
	var re *sr.ResponseError
	if !errors.As(err, &re) || re.StatusCode != 409 || re.ErrorCode != 409 {
		t.Fatalf("breaking change: want 409, got %v", err)
	}
	versions, err := cl.SubjectVersions(ctx, subject)
	if err != nil || len(versions) != 2 {
		t.Fatalf("versions: %v %v", versions, err)
	}
	if _, err := cl.SchemaByVersion(ctx, "no-such-subject", 1); !errors.As(err, &re) || re.ErrorCode != 40401 {
		t.Fatalf("missing subject: want 40401, got %v", err)
	}
}
