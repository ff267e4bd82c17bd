// Interop scenario for franz-go (github.com/twmb/franz-go): topics through kadm, keyed
// records with headers and nulls, consumer groups, committed offsets, rebalances, every
// codec, a 1 MiB record, ListOffsets by timestamp and the idempotent producer, against the
// broker at $BOOTSTRAP. The subtests run in order and share the main topic.
package franzgo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	partitions = 4
	oneMiB     = 1 << 20
	bigTopicMB = 3 * oneMiB
)

var bootstrap = func() string {
	if b := os.Getenv("BOOTSTRAP"); b != "" {
		return b
	}
	return "127.0.0.1:9092"
}()

// murmur2 is Kafka's org.apache.kafka.common.utils.Utils.murmur2.
func murmur2(data []byte) uint32 {
	const m, r = 0x5bd1e995, 24
	length := len(data)
	h := uint32(0x9747b28c) ^ uint32(length)
	for i := 0; i+4 <= length; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	base := length &^ 3
	switch length % 4 {
	case 3:
		h ^= uint32(data[base+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[base+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[base])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

// javaPartition is the partition Java's default partitioner picks for a keyed record.
func javaPartition(key []byte, n int) int32 {
	return int32((murmur2(key) & 0x7fffffff) % uint32(n))
}

func TestMurmur2MatchesKafka(t *testing.T) {
	// Vectors from Kafka's UtilsTest.
	for s, want := range map[string]int32{"21": -973932308, "foobar": -790332482,
		"a-little-bit-long-string": -985981536, "a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971, "abc": 479470107} {
		if got := int32(murmur2([]byte(s))); got != want {
			t.Fatalf("murmur2(%q) = %d, want %d", s, got, want)
		}
	}
}

func unique(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func newClient(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(bootstrap)}, opts...)...)
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	return cl
}

func createTopic(t *testing.T, name string, parts int32, configs map[string]*string) {
	t.Helper()
	cl := newClient(t)
	defer cl.Close()
	adm := kadm.NewClient(cl)
	resp, err := adm.CreateTopic(ctxFor(t, 30*time.Second), parts, 1, configs, name)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic %s: %v %v", name, err, resp.Err)
	}
	// Usable once metadata lists every partition with a leader.
	waitFor(t, 30*time.Second, "metadata of "+name, func() bool {
		md, err := adm.Metadata(ctxFor(t, 10*time.Second), name)
		if err != nil {
			return false
		}
		td, ok := md.Topics[name]
		if !ok || td.Err != nil || len(td.Partitions) != int(parts) {
			return false
		}
		for _, p := range td.Partitions {
			if p.Leader < 0 {
				return false
			}
		}
		return true
	})
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond) // polling a condition, with a deadline
	}
}

// sample builds n records: keyed with headers; every 7th has a null key, every 5th keyed
// one a null value. The id header identifies each.
func sample(topic, tag string, n int) []*kgo.Record {
	out := make([]*kgo.Record, 0, n)
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("%s-%d", tag, i)
		r := &kgo.Record{Topic: topic, Headers: []kgo.RecordHeader{{Key: "id", Value: []byte(id)}, {Key: "n", Value: []byte(strconv.Itoa(i))}}}
		if i%7 != 3 {
			r.Key = []byte(fmt.Sprintf("key-%d", i%23))
		}
		if !(i%5 == 4 && r.Key != nil) {
			r.Value = []byte("value-" + id)
		}
		out = append(out, r)
	}
	return out
}

func idOf(r *kgo.Record) string {
	for _, h := range r.Headers {
		if h.Key == "id" {
			return string(h.Value)
		}
	}
	return ""
}

// produce sends records synchronously; afterwards each carries its partition and offset.
func produce(t *testing.T, cl *kgo.Client, recs []*kgo.Record) {
	t.Helper()
	if err := cl.ProduceSync(ctxFor(t, 60*time.Second), recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

type got struct {
	id               string
	key, value       []byte
	keyNil, valueNil bool
	headers          []kgo.RecordHeader
	partition        int32
	offset           int64
}

func snapshot(r *kgo.Record) got {
	return got{id: idOf(r), key: r.Key, value: r.Value, keyNil: r.Key == nil, valueNil: r.Value == nil,
		headers: r.Headers, partition: r.Partition, offset: r.Offset}
}

// verify checks each produced record was consumed exactly once, intact, at the partition
// and offset the producer was told, and in per-partition order.
func verify(t *testing.T, what string, produced []*kgo.Record, consumed []got) {
	t.Helper()
	byID := map[string]*kgo.Record{}
	for _, p := range produced {
		byID[idOf(p)] = p
	}
	seen := map[string]bool{}
	last := map[int32]int64{}
	for _, c := range consumed {
		p, ok := byID[c.id]
		if !ok {
			t.Fatalf("%s: consumed a record that was not produced: %q", what, c.id)
		}
		if seen[c.id] {
			t.Fatalf("%s: record %s consumed twice", what, c.id)
		}
		seen[c.id] = true
		if c.partition != p.Partition || c.offset != p.Offset {
			t.Fatalf("%s: %s at %d/%d, produced to %d/%d", what, c.id, c.partition, c.offset, p.Partition, p.Offset)
		}
		if !bytes.Equal(c.key, p.Key) || c.keyNil != (p.Key == nil) || !bytes.Equal(c.value, p.Value) || c.valueNil != (p.Value == nil) {
			t.Fatalf("%s: %s key/value %q/%q (nil %v/%v), want %q/%q", what, c.id, c.key, c.value, c.keyNil, c.valueNil, p.Key, p.Value)
		}
		if len(c.headers) != len(p.Headers) {
			t.Fatalf("%s: %s has headers %v, want %v", what, c.id, c.headers, p.Headers)
		}
		for i := range c.headers {
			if c.headers[i].Key != p.Headers[i].Key || !bytes.Equal(c.headers[i].Value, p.Headers[i].Value) {
				t.Fatalf("%s: %s has headers %v, want %v", what, c.id, c.headers, p.Headers)
			}
		}
		if prev, ok := last[c.partition]; ok && c.offset <= prev {
			t.Fatalf("%s: partition %d went from offset %d to %d", what, c.partition, prev, c.offset)
		}
		last[c.partition] = c.offset
	}
	if len(seen) != len(produced) {
		t.Fatalf("%s: consumed %d of %d records", what, len(seen), len(produced))
	}
}

func checkKeyed(t *testing.T, what string, recs []*kgo.Record, n int) {
	t.Helper()
	for _, r := range recs {
		if r.Key != nil && r.Partition != javaPartition(r.Key, n) {
			t.Fatalf("%s: key %q went to partition %d, Java's murmur2 partitioner picks %d", what, r.Key, r.Partition, javaPartition(r.Key, n))
		}
	}
}

// consumeN polls until n records arrived, then checks nothing more comes within a second.
func consumeN(t *testing.T, cl *kgo.Client, n int) []got {
	t.Helper()
	var out []got
	deadline := time.Now().Add(60 * time.Second)
	for len(out) < n {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %d records (got %d)", n, len(out))
		}
		fs := cl.PollFetches(ctxFor(t, 500*time.Millisecond))
		fs.EachError(func(topic string, p int32, err error) {
			if err != context.DeadlineExceeded {
				t.Fatalf("fetch %s/%d: %v", topic, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) { out = append(out, snapshot(r)) })
	}
	extra := cl.PollFetches(ctxFor(t, time.Second))
	if extra.NumRecords() > 0 {
		t.Fatalf("%d unexpected extra records, e.g. %s", extra.NumRecords(), idOf(extra.Records()[0]))
	}
	return out
}

func groupConsumer(t *testing.T, group string, topic string, opts ...kgo.Opt) *kgo.Client {
	return newClient(t, append([]kgo.Opt{kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SessionTimeout(10 * time.Second), kgo.HeartbeatInterval(500 * time.Millisecond)}, opts...)...)
}

func TestScenario(t *testing.T) {
	topic := unique("franz-main")
	group := unique("franz-group")
	producer := newClient(t, kgo.ProducerLinger(5*time.Millisecond))
	defer producer.Close()
	var first []*kgo.Record

	steps := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"create topic with 4 partitions (kadm)", func(t *testing.T) {
			createTopic(t, topic, partitions, nil)
		}},
		{"produce keyed records with headers, null keys and null values", func(t *testing.T) {
			first = sample(topic, "a", 300)
			produce(t, producer, first)
			checkKeyed(t, "keyed records", first, partitions)
		}},
		{"group consumes all exactly once in per-partition order, commits", func(t *testing.T) {
			c := groupConsumer(t, group, topic)
			defer c.Close()
			verify(t, "first consumer", first, consumeN(t, c, len(first)))
			if err := c.CommitUncommittedOffsets(ctxFor(t, 30*time.Second)); err != nil {
				t.Fatalf("commit: %v", err)
			}
			adm := kadm.NewClient(producer)
			offs, err := adm.FetchOffsets(ctxFor(t, 30*time.Second), group)
			if err != nil {
				t.Fatalf("fetch committed offsets: %v", err)
			}
			end := map[int32]int64{}
			for _, r := range first {
				if r.Offset+1 > end[r.Partition] {
					end[r.Partition] = r.Offset + 1
				}
			}
			for p := int32(0); p < partitions; p++ {
				o, ok := offs.Lookup(topic, p)
				if !ok || o.At != end[p] {
					t.Fatalf("committed offset of partition %d: %v (found %v), want %d", p, o.At, ok, end[p])
				}
			}
		}},
		{"restarted consumer resumes at the committed offset", func(t *testing.T) {
			more := sample(topic, "b", 100)
			produce(t, producer, more)
			c := groupConsumer(t, group, topic)
			defer c.Close()
			verify(t, "restarted consumer", more, consumeN(t, c, len(more)))
			if err := c.CommitUncommittedOffsets(ctxFor(t, 30*time.Second)); err != nil {
				t.Fatalf("commit: %v", err)
			}
		}},
		{"two members split partitions, a third joins, nothing lost", testRebalance},
		{"gzip, snappy, lz4, zstd round-trip", testCodecs},
		{"1 MiB record round-trips", testBigRecord},
		{"ListOffsets by timestamp (kadm ListOffsetsAfterMilli)", testOffsetsForTimes},
		{"idempotent producer writes each record once", testIdempotent},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.fn) && (s.name == "create topic with 4 partitions (kadm)") {
			t.FailNow()
		}
	}
}

// member consumes in its own goroutine, commits after each poll and before partitions are
// taken away, so that the next owner starts where it stopped.
type member struct {
	name  string
	cl    *kgo.Client
	mu    sync.Mutex
	owned map[int32]bool
	recs  []got
	err   error
	done  chan struct{}
	stop  context.CancelFunc
}

func startMember(t *testing.T, name, group, topic string) *member {
	m := &member{name: name, owned: map[int32]bool{}, done: make(chan struct{})}
	m.cl = groupConsumer(t, group, topic,
		kgo.Balancers(kgo.RangeBalancer()),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			m.mu.Lock()
			for _, p := range a[topic] {
				m.owned[p] = true
			}
			m.mu.Unlock()
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, r map[string][]int32) {
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				m.mu.Lock()
				m.err = fmt.Errorf("commit on revoke: %w", err)
				m.mu.Unlock()
			}
			m.mu.Lock()
			for _, p := range r[topic] {
				delete(m.owned, p)
			}
			m.mu.Unlock()
		}))
	ctx, cancel := context.WithCancel(context.Background())
	m.stop = cancel
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			fs := m.cl.PollFetches(ctx)
			fs.EachError(func(topic string, p int32, err error) {
				if err != context.Canceled {
					m.mu.Lock()
					m.err = fmt.Errorf("fetch %s/%d: %w", topic, p, err)
					m.mu.Unlock()
				}
			})
			m.mu.Lock()
			fs.EachRecord(func(r *kgo.Record) { m.recs = append(m.recs, snapshot(r)) })
			m.mu.Unlock()
			if fs.NumRecords() > 0 {
				if err := m.cl.CommitUncommittedOffsets(context.Background()); err != nil {
					m.mu.Lock()
					m.err = fmt.Errorf("commit: %w", err)
					m.mu.Unlock()
				}
			}
			m.cl.AllowRebalance()
		}
	}()
	return m
}

func (m *member) state() (map[int32]bool, int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	owned := map[int32]bool{}
	for p := range m.owned {
		owned[p] = true
	}
	return owned, len(m.recs), m.err
}

func (m *member) close() {
	m.stop()
	<-m.done
	m.cl.Close()
}

func testRebalance(t *testing.T) {
	topic := unique("franz-group2")
	group := unique("franz-split")
	createTopic(t, topic, 6, nil)
	producer := newClient(t)
	defer producer.Close()
	firstBatch := sample(topic, "c", 120)
	produce(t, producer, firstBatch)
	members := []*member{startMember(t, "m1", group, topic), startMember(t, "m2", group, topic)}
	defer func() {
		for _, m := range members {
			m.close()
		}
	}()
	split := func() bool {
		union := map[int32]bool{}
		total := 0
		for _, m := range members {
			owned, _, err := m.state()
			if err != nil {
				t.Fatalf("member %s: %v", m.name, err)
			}
			if len(owned) == 0 {
				return false
			}
			for p := range owned {
				union[p] = true
			}
			total += len(owned)
		}
		return len(union) == 6 && total == 6
	}
	count := func() int {
		n := 0
		for _, m := range members {
			_, c, _ := m.state()
			n += c
		}
		return n
	}
	waitFor(t, 60*time.Second, "two members to split 6 partitions", split)
	waitFor(t, 60*time.Second, "the first batch to be consumed", func() bool { return count() >= len(firstBatch) })
	members = append(members, startMember(t, "m3", group, topic))
	second := sample(topic, "d", 120)
	produce(t, producer, second)
	waitFor(t, 60*time.Second, "a rebalance giving each of three members some partitions", split)
	third := sample(topic, "e", 120)
	produce(t, producer, third)
	all := append(append(append([]*kgo.Record{}, firstBatch...), second...), third...)
	waitFor(t, 60*time.Second, "all records across three members", func() bool { split(); return count() >= len(all) })
	var consumed []got
	for _, m := range members {
		m.mu.Lock()
		consumed = append(consumed, m.recs...)
		m.mu.Unlock()
	}
	if _, n, _ := members[2].state(); n == 0 {
		t.Fatalf("the third member consumed nothing")
	}
	sort.SliceStable(consumed, func(i, j int) bool {
		if consumed[i].partition != consumed[j].partition {
			return consumed[i].partition < consumed[j].partition
		}
		return consumed[i].offset < consumed[j].offset
	})
	verify(t, "three-member group", all, consumed)
}

func testCodecs(t *testing.T) {
	for name, codec := range map[string]kgo.CompressionCodec{"gzip": kgo.GzipCompression(),
		"snappy": kgo.SnappyCompression(), "lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression()} {
		topic := unique("franz-" + name)
		createTopic(t, topic, 2, nil)
		p := newClient(t, kgo.ProducerBatchCompression(codec), kgo.ProducerLinger(20*time.Millisecond))
		recs := make([]*kgo.Record, 200)
		for i := range recs {
			id := fmt.Sprintf("%s-%d", name, i)
			recs[i] = &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("k%d", i)),
				Value:   bytes.Repeat([]byte(name+" payload "+strconv.Itoa(i)+" "), 40),
				Headers: []kgo.RecordHeader{{Key: "id", Value: []byte(id)}}}
		}
		produce(t, p, recs)
		p.Close()
		c := groupConsumer(t, unique("franz-codec"), topic)
		verify(t, name+" round trip", recs, consumeN(t, c, len(recs)))
		c.Close()
	}
}

func testBigRecord(t *testing.T) {
	topic := unique("franz-big")
	limit := strconv.Itoa(bigTopicMB)
	createTopic(t, topic, 1, map[string]*string{"max.message.bytes": &limit})
	value := make([]byte, oneMiB)
	for i := range value {
		value[i] = byte((i*7919 + 13) % 251)
	}
	p := newClient(t, kgo.ProducerBatchMaxBytes(bigTopicMB))
	defer p.Close()
	rec := []*kgo.Record{{Topic: topic, Key: []byte("big"), Value: value, Headers: []kgo.RecordHeader{{Key: "id", Value: []byte("big")}}}}
	produce(t, p, rec)
	c := groupConsumer(t, unique("franz-big"), topic, kgo.FetchMaxBytes(8*oneMiB), kgo.FetchMaxPartitionBytes(4*oneMiB))
	defer c.Close()
	verify(t, "1 MiB record", rec, consumeN(t, c, 1))
}

func testOffsetsForTimes(t *testing.T) {
	topic := unique("franz-time")
	createTopic(t, topic, 1, nil)
	base := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	p := newClient(t)
	defer p.Close()
	var recs []*kgo.Record
	for i := 0; i < 10; i++ {
		recs = append(recs, &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("t%d", i)), Timestamp: base.Add(time.Duration(i) * time.Second)})
	}
	produce(t, p, recs)
	adm := kadm.NewClient(p)
	start, err := adm.ListStartOffsets(ctxFor(t, 10*time.Second), topic)
	if err != nil {
		t.Fatalf("list start offsets: %v", err)
	}
	end, err := adm.ListEndOffsets(ctxFor(t, 10*time.Second), topic)
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	if s, _ := start.Lookup(topic, 0); s.Offset != 0 {
		t.Fatalf("earliest offset %d, want 0", s.Offset)
	}
	if e, _ := end.Lookup(topic, 0); e.Offset != 10 {
		t.Fatalf("latest offset %d, want 10", e.Offset)
	}
	ms := base.UnixMilli()
	for _, c := range []struct{ ts, want int64 }{{ms, 0}, {ms + 4500, 5}, {ms + 9000, 9}, {ms - 10000, 0}} {
		lo, err := adm.ListOffsetsAfterMilli(ctxFor(t, 10*time.Second), c.ts, topic)
		if err != nil {
			t.Fatalf("list offsets after %d: %v", c.ts, err)
		}
		o, _ := lo.Lookup(topic, 0)
		if o.Err != nil || o.Offset != c.want || o.Timestamp != ms+c.want*1000 {
			t.Fatalf("offset for base+%dms: %d at %d (err %v), want %d at %d", c.ts-ms, o.Offset, o.Timestamp, o.Err, c.want, ms+c.want*1000)
		}
	}
	// kadm reports "nothing at or after this time" as the end offset.
	lo, err := adm.ListOffsetsAfterMilli(ctxFor(t, 10*time.Second), ms+60_000_000, topic)
	if err != nil {
		t.Fatalf("list offsets after the last record: %v", err)
	}
	if o, _ := lo.Lookup(topic, 0); o.Offset != 10 {
		t.Fatalf("offset for a timestamp after the last record: %d, want the end offset 10", o.Offset)
	}
}

func testIdempotent(t *testing.T) {
	topic := unique("franz-idem")
	createTopic(t, topic, 3, nil)
	// franz-go's producer is idempotent unless told otherwise; acks=all is its default too.
	p := newClient(t, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(time.Millisecond), kgo.ProducerBatchMaxBytes(4096))
	defer p.Close()
	recs := sample(topic, "i", 500)
	produce(t, p, recs)
	checkKeyed(t, "idempotent producer", recs, 3)
	c := groupConsumer(t, unique("franz-idem"), topic)
	defer c.Close()
	verify(t, "idempotent producer", recs, consumeN(t, c, len(recs)))
}
