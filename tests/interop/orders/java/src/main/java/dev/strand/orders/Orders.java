package dev.strand.orders;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.avro.AvroRuntimeException;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The Java side of the orders interop test (tests/interop/orders/run), with nothing but
 * kafka-clients, org.apache.avro and the registry's REST API:
 *
 * <pre>
 *   Orders consume BOOTSTRAP REGISTRY_URL TOPIC COUNT   # decode produce_orders' records
 *   Orders produce BOOTSTRAP REGISTRY_URL TOPIC COUNT   # write java-0.. for consume_orders
 * </pre>
 *
 * The Confluent framing (magic byte 0, 4-byte big-endian schema id, Avro binary) is written
 * out here rather than taken from Confluent's serializers, so that what strand's client
 * writes is checked against the wire format itself, not against one more implementation.
 */
public final class Orders {
    /** created_at of order 0 written here (expected.py's BASE_MILLIS). */
    static final long BASE_MILLIS = 1764000000000L;
    /** Every mode must finish within this, as the other languages' programs do. */
    static final Duration DEADLINE = Duration.ofSeconds(60);
    static final byte MAGIC = 0;

    /** One record of schemas/order.avsc; equality is field by field, as the check needs. */
    record Order(String orderId, String customerId, long amountCents, String currency, long createdAt) {
        /** Order i of a producer whose ids start with prefix: the formula of expected.py. */
        static Order expected(String prefix, int i, long base) {
            return new Order(prefix + "-" + i, "customer-" + (i % 7), 1000 + (i * 37L) % 9000,
                    i % 2 == 0 ? "EUR" : "USD", base + i);
        }

        static Order of(GenericRecord r) {
            return new Order(string(r, "order_id"), string(r, "customer_id"), number(r, "amount_cents"),
                    string(r, "currency"), number(r, "created_at"));
        }

        GenericRecord toAvro(Schema schema) {
            GenericRecord r = new GenericData.Record(schema);
            r.put("order_id", orderId);
            r.put("customer_id", customerId);
            r.put("amount_cents", amountCents);
            r.put("currency", currency);
            // GenericData has no logical-type conversions registered: timestamp-millis stays a long.
            r.put("created_at", createdAt);
            return r;
        }

        // Avro strings decode as Utf8; anything else in these fields means the schemas disagree.
        private static String string(GenericRecord r, String field) {
            Object v = r.get(field);
            if (!(v instanceof CharSequence)) throw new Failure(field + " is not a string: " + v);
            return v.toString();
        }

        private static long number(GenericRecord r, String field) {
            Object v = r.get(field);
            if (!(v instanceof Long)) throw new Failure(field + " is not a long: " + v);
            return (Long) v;
        }
    }

    /** A check that did not hold; main prints its message and exits 1. */
    static final class Failure extends RuntimeException {
        Failure(String msg) { super(msg); }
    }

    /**
     * The two registry calls this test needs, over java.net.http. JSON goes through Jackson,
     * which org.apache.avro depends on (and parses its schemas with) anyway.
     */
    static final class Registry {
        private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
        private final ObjectMapper json = new ObjectMapper();
        private final String base;
        private final Map<Integer, Schema> byId = new HashMap<>();

        Registry(String url) { base = url.replaceAll("/+$", ""); }

        /** POST /subjects/{subject}/versions: registers (or finds) the schema, returns its id. */
        int register(String subject, String schema) throws IOException, InterruptedException {
            String body = json.writeValueAsString(Map.of("schema", schema));
            String path = "/subjects/" + URLEncoder.encode(subject, StandardCharsets.UTF_8) + "/versions";
            JsonNode reply = call(HttpRequest.newBuilder(uri(path))
                    .header("Content-Type", "application/vnd.schemaregistry.v1+json")
                    .POST(HttpRequest.BodyPublishers.ofString(body)));
            if (!reply.path("id").isInt()) throw new Failure("registry's reply to register has no id: " + reply);
            return reply.get("id").asInt();
        }

        /** GET /schemas/ids/{id}: the writer schema of a framed record, fetched once per id. */
        Schema schemaById(int id) throws IOException, InterruptedException {
            Schema known = byId.get(id);
            if (known != null) return known;
            JsonNode reply = call(HttpRequest.newBuilder(uri("/schemas/ids/" + id)).GET());
            // An AVRO schema comes without "schemaType"; anything else cannot be an order.
            String type = reply.path("schemaType").asText("AVRO");
            if (!type.equals("AVRO") || !reply.path("schema").isTextual()) {
                throw new Failure("schema id " + id + " is not an Avro schema: " + reply);
            }
            Schema schema = new Schema.Parser().parse(reply.get("schema").asText());
            byId.put(id, schema);
            return schema;
        }

        private URI uri(String path) { return URI.create(base + path); }

        private JsonNode call(HttpRequest.Builder request) throws IOException, InterruptedException {
            HttpRequest req = request.timeout(Duration.ofSeconds(30))
                    .header("Accept", "application/vnd.schemaregistry.v1+json").build();
            HttpResponse<String> resp = http.send(req, HttpResponse.BodyHandlers.ofString());
            if (resp.statusCode() != 200) {
                throw new Failure(req.method() + " " + req.uri() + ": HTTP " + resp.statusCode() + " " + resp.body());
            }
            return json.readTree(resp.body());
        }
    }

    /** schemas/order.avsc, which the pom copies onto the classpath. */
    static String orderSchema() throws IOException {
        try (InputStream in = Orders.class.getResourceAsStream("/order.avsc")) {
            if (in == null) throw new Failure("order.avsc is not on the classpath (see pom.xml)");
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    /** The Confluent frame: magic byte, the schema id big-endian, then the Avro binary body. */
    static byte[] frame(int schemaId, GenericDatumWriter<GenericRecord> writer, GenericRecord value) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(MAGIC);
        out.write(ByteBuffer.allocate(4).putInt(schemaId).array());
        BinaryEncoder enc = EncoderFactory.get().binaryEncoder(out, null);
        writer.write(value, enc);
        enc.flush();
        return out.toByteArray();
    }

    /**
     * Reads one framed value: the writer schema is whatever the frame's id names in the
     * registry, resolved into the reader schema (order.avsc) as Avro schema resolution says.
     */
    static GenericRecord unframe(byte[] value, Registry registry, Schema reader,
            Map<Integer, GenericDatumReader<GenericRecord>> readers) throws IOException, InterruptedException {
        if (value == null || value.length < 5) {
            throw new Failure("a value of " + (value == null ? "null" : value.length + " bytes") + " cannot hold a Confluent frame");
        }
        if (value[0] != MAGIC) throw new Failure(String.format("unknown magic byte 0x%02x (expected 0x00)", value[0]));
        int id = ByteBuffer.wrap(value, 1, 4).getInt();
        GenericDatumReader<GenericRecord> datumReader = readers.get(id);
        if (datumReader == null) {
            datumReader = new GenericDatumReader<>(registry.schemaById(id), reader);
            readers.put(id, datumReader);
        }
        BinaryDecoder dec = DecoderFactory.get().binaryDecoder(value, 5, value.length - 5, null);
        GenericRecord record = datumReader.read(null, dec);
        // Bytes left over mean the body was not written with the schema its id names.
        if (!dec.isEnd()) throw new Failure("bytes left after decoding a record with schema id " + id);
        return record;
    }

    static void consume(String bootstrap, Registry registry, String topic, int count) throws Exception {
        Schema reader = new Schema.Parser().parse(orderSchema());
        Map<Integer, GenericDatumReader<GenericRecord>> readers = new HashMap<>();
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.GROUP_ID_CONFIG, "orders-java-" + ProcessHandle.current().pid());
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        Map<String, Order> got = new HashMap<>();
        long deadline = System.nanoTime() + DEADLINE.toNanos();
        try (KafkaConsumer<byte[], byte[]> consumer =
                new KafkaConsumer<>(props, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            consumer.subscribe(List.of(topic));
            while (got.size() < count) {
                if (System.nanoTime() > deadline) {
                    throw new Failure("only " + got.size() + " of " + count + " orders arrived in " + DEADLINE.toSeconds() + "s");
                }
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(500))) {
                    Order o;
                    try {
                        o = Order.of(unframe(r.value(), registry, reader, readers));
                    } catch (Failure | AvroRuntimeException | IOException e) {
                        // Avro's own exceptions (an EOFException for a short body) may carry
                        // no message: name them.
                        String why = e instanceof Failure ? e.getMessage() : e.toString();
                        throw new Failure("record at " + r.partition() + "/" + r.offset() + ": " + why);
                    }
                    String key = r.key() == null ? null : new String(r.key(), StandardCharsets.UTF_8);
                    if (!o.orderId().equals(key)) throw new Failure("key " + key + " differs from order_id " + o.orderId());
                    if (got.put(o.orderId(), o) != null) throw new Failure("order " + o.orderId() + " decoded twice");
                }
            }
        }
        // produce_orders stamps its start time into created_at: check it is recent, then
        // compare every field against the formula with that base.
        Order first = got.get("order-0");
        if (first == null) throw new Failure("order-0 missing");
        long age = Instant.now().toEpochMilli() - first.createdAt();
        if (age < 0 || age > 600_000) {
            throw new Failure("created_at " + first.createdAt() + " is not a timestamp of the last 10 minutes");
        }
        for (int i = 0; i < count; i++) {
            Order want = Order.expected("order", i, first.createdAt());
            Order o = got.get(want.orderId());
            if (!want.equals(o)) throw new Failure("order " + i + ": decoded " + o + ", expected " + want);
        }
        System.out.println("kafka-clients + org.apache.avro decoded all " + count + " produce_orders orders");
    }

    static void produce(String bootstrap, Registry registry, String topic, int count) throws Exception {
        // Three partitions, as the other languages create, so keys spread over partitions
        // and consume_orders has to read them all.
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap))) {
            admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1))).all().get(30, TimeUnit.SECONDS);
        }
        String schemaText = orderSchema();
        Schema schema = new Schema.Parser().parse(schemaText);
        // TopicNameStrategy, as every other program here uses.
        int id = registry.register(topic + "-value", schemaText);
        GenericDatumWriter<GenericRecord> writer = new GenericDatumWriter<>(schema);
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        // Give up on a record well inside the run script's 120 s limit, so that a broker
        // which never acknowledges shows up as a delivery error rather than a kill.
        props.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "45000");
        AtomicReference<Exception> failure = new AtomicReference<>();
        // No partitioner configured: the default one (murmur2 of the key) is part of what is tested.
        try (KafkaProducer<byte[], byte[]> producer =
                new KafkaProducer<>(props, new ByteArraySerializer(), new ByteArraySerializer())) {
            for (int i = 0; i < count; i++) {
                Order o = Order.expected("java", i, BASE_MILLIS);
                byte[] key = o.orderId().getBytes(StandardCharsets.UTF_8);
                producer.send(new ProducerRecord<>(topic, key, frame(id, writer, o.toAvro(schema))), (meta, err) -> {
                    if (err != null) failure.compareAndSet(null, err);
                });
            }
            producer.flush();
        }
        if (failure.get() != null) throw new Failure("delivery failed: " + failure.get());
        System.out.println("kafka-clients + org.apache.avro wrote " + count + " orders (schema id " + id + ")");
    }

    public static void main(String[] args) {
        if (args.length != 5 || !(args[0].equals("consume") || args[0].equals("produce"))) {
            System.err.println("usage: Orders consume|produce BOOTSTRAP REGISTRY_URL TOPIC COUNT");
            System.exit(2);
        }
        try {
            Registry registry = new Registry(args[2]);
            int count = Integer.parseInt(args[4]);
            if (args[0].equals("consume")) consume(args[1], registry, args[3], count);
            else produce(args[1], registry, args[3], count);
        } catch (Failure e) {
            System.err.println("orders-java: " + e.getMessage());
            System.exit(1);
        } catch (Exception e) {
            System.err.print("orders-java: ");
            e.printStackTrace();
            System.exit(1);
        }
        // Exit explicitly: a client thread still winding down must not keep the JVM alive.
        System.exit(0);
    }
}
