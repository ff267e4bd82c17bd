// The franz-go + sr side of the orders interop test (tests/interop/orders/run).
//
//	orders-go consume BOOTSTRAP REGISTRY_URL TOPIC COUNT  // decode produce_orders' records
//	orders-go produce BOOTSTRAP REGISTRY_URL TOPIC COUNT  // write go-0.. for consume_orders
//
// Values are Confluent-framed Avro: sr.Serde frames them, hamba/avro encodes the body with
// schemas/order.avsc; the consumer fetches each writer schema by the id in the frame.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

// Order is one record of schemas/order.avsc.
type Order struct {
	OrderID     string `avro:"order_id"`
	CustomerID  string `avro:"customer_id"`
	AmountCents int64  `avro:"amount_cents"`
	Currency    string `avro:"currency"`
	CreatedAt   int64  `avro:"created_at"`
}

// baseMillis is created_at of order 0 written here (expected.py's BASE_MILLIS).
const baseMillis = 1764000000000

func expected(prefix string, i int, base int64) Order {
	currency := "EUR"
	if i%2 == 1 {
		currency = "USD"
	}
	return Order{
		OrderID:     fmt.Sprintf("%s-%d", prefix, i),
		CustomerID:  fmt.Sprintf("customer-%d", i%7),
		AmountCents: 1000 + int64(i*37)%9000,
		Currency:    currency,
		CreatedAt:   base + int64(i),
	}
}

func readerSchema() (string, error) {
	_, file, _, _ := runtime.Caller(0)
	path := os.Getenv("ORDER_SCHEMA")
	if path == "" {
		path = filepath.Join(filepath.Dir(file), "../../../../schemas/order.avsc")
	}
	b, err := os.ReadFile(path)
	return string(b), err
}

func consume(ctx context.Context, cl *kgo.Client, reg *sr.Client, topic string, count int) error {
	reader, err := readerSchema()
	if err != nil {
		return err
	}
	readerSch, err := avro.Parse(reader)
	if err != nil {
		return err
	}
	var serde sr.Serde
	got := map[string]Order{}
	for len(got) < count {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("only %d of %d orders arrived in time", len(got), count)
		}
		if errs := fetches.Errors(); len(errs) > 0 {
			return fmt.Errorf("fetch: %v", errs[0].Err)
		}
		for _, r := range fetches.Records() {
			id, _, err := serde.DecodeID(r.Value)
			if err != nil {
				return fmt.Errorf("frame at %d/%d: %w", r.Partition, r.Offset, err)
			}
			if !serde.IsRegistered(id) {
				// The writer schema is whatever the producer registered; resolve it into
				// the reader schema, as Avro schema resolution says.
				writer, err := reg.SchemaByID(ctx, id)
				if err != nil {
					return fmt.Errorf("schema %d: %w", id, err)
				}
				writerSch, err := avro.Parse(writer.Schema)
				if err != nil {
					return err
				}
				resolved, err := avro.NewSchemaCompatibility().Resolve(readerSch, writerSch)
				if err != nil {
					return err
				}
				serde.Register(id, Order{}, sr.DecodeFn(func(b []byte, v any) error {
					return avro.Unmarshal(resolved, b, v)
				}))
			}
			var o Order
			if err := serde.Decode(r.Value, &o); err != nil {
				return fmt.Errorf("decode at %d/%d: %w", r.Partition, r.Offset, err)
			}
			if string(r.Key) != o.OrderID {
				return fmt.Errorf("key %q differs from order_id %q", r.Key, o.OrderID)
			}
			if _, dup := got[o.OrderID]; dup {
				return fmt.Errorf("order %s decoded twice", o.OrderID)
			}
			got[o.OrderID] = o
		}
	}
	first, ok := got["order-0"]
	if !ok {
		return errors.New("order-0 missing")
	}
	if age := time.Now().UnixMilli() - first.CreatedAt; age < 0 || age > 600_000 {
		return fmt.Errorf("created_at %d is not a timestamp of the last 10 minutes", first.CreatedAt)
	}
	for i := 0; i < count; i++ {
		want := expected("order", i, first.CreatedAt)
		if o, ok := got[want.OrderID]; !ok || o != want {
			return fmt.Errorf("order %d: decoded %+v (present %v), expected %+v", i, o, ok, want)
		}
	}
	fmt.Printf("franz-go + sr decoded all %d produce_orders orders\n", count)
	return nil
}

func produce(ctx context.Context, cl *kgo.Client, reg *sr.Client, topic string, count int) error {
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 1, nil, topic); err != nil {
		return fmt.Errorf("create topic: %w", err)
	}
	schema, err := readerSchema()
	if err != nil {
		return err
	}
	sch, err := avro.Parse(schema)
	if err != nil {
		return err
	}
	registered, err := reg.CreateSchema(ctx, topic+"-value", sr.Schema{Schema: schema, Type: sr.TypeAvro})
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	var serde sr.Serde
	serde.Register(registered.ID, Order{}, sr.EncodeFn(func(v any) ([]byte, error) {
		return avro.Marshal(sch, v)
	}))
	records := make([]*kgo.Record, 0, count)
	for i := 0; i < count; i++ {
		o := expected("go", i, baseMillis)
		value, err := serde.Encode(o)
		if err != nil {
			return err
		}
		records = append(records, &kgo.Record{Topic: topic, Key: []byte(o.OrderID), Value: value})
	}
	if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	fmt.Printf("franz-go + sr wrote %d orders (schema id %d)\n", count, registered.ID)
	return nil
}

func run() error {
	if len(os.Args) != 6 || (os.Args[1] != "consume" && os.Args[1] != "produce") {
		return errors.New("usage: orders-go consume|produce BOOTSTRAP REGISTRY_URL TOPIC COUNT")
	}
	mode, bootstrap, url, topic := os.Args[1], os.Args[2], os.Args[3], os.Args[4]
	count, err := strconv.Atoi(os.Args[5])
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	reg, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		return err
	}
	opts := []kgo.Opt{kgo.SeedBrokers(bootstrap)}
	if mode == "consume" {
		opts = append(opts, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	if mode == "consume" {
		return consume(ctx, cl, reg, topic, count)
	}
	return produce(ctx, cl, reg, topic, count)
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "orders-go:", err)
		os.Exit(1)
	}
}
