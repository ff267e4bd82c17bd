package dev.strand.interop;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Properties;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Interop scenario for the Java client (org.apache.kafka:kafka-clients 4.x): topics through
 * Admin, keyed records with headers and nulls, consumer groups (classic protocol), committed
 * offsets, rebalances, every codec, a 1 MiB record, ListOffsets by timestamp and the
 * idempotent producer, against the broker at $BOOTSTRAP.
 */
public final class Scenario {
    static final String BOOTSTRAP = Objects.requireNonNullElse(System.getenv("BOOTSTRAP"), "127.0.0.1:9092");
    static final int PARTITIONS = 4;
    static final int ONE_MIB = 1 << 20;
    static final int BIG_TOPIC_MAX_MESSAGE_BYTES = 3 * ONE_MIB;

    /** A record as produced, with where the broker said it landed. */
    record Sent(String id, byte[] key, byte[] value, List<Header> headers, int partition, long offset) {}

    /** A record as consumed. */
    record Got(String id, byte[] key, byte[] value, List<Header> headers, int partition, long offset, long timestamp) {
        static Got of(ConsumerRecord<byte[], byte[]> r) {
            Header h = r.headers().lastHeader("id");
            return new Got(h == null ? null : new String(h.value(), StandardCharsets.UTF_8), r.key(), r.value(),
                    Arrays.asList(r.headers().toArray()), r.partition(), r.offset(), r.timestamp());
        }
    }

    static final class Failure extends RuntimeException {
        Failure(String msg) { super(msg); }
    }

    static void check(boolean cond, Supplier<String> msg) {
        if (!cond) throw new Failure(msg.get());
    }

    static void checkEq(Object got, Object want, String what) {
        check(Objects.equals(got, want), () -> what + ": expected " + want + ", got " + got);
    }

    /** Kafka's murmur2, written out here so that the client's own partitioner is checked against it. */
    static int murmur2(byte[] data) {
        final int m = 0x5bd1e995, r = 24, length = data.length;
        int h = 0x9747b28c ^ length;
        for (int i = 0; i + 4 <= length; i += 4) {
            int k = (data[i] & 0xff) | (data[i + 1] & 0xff) << 8 | (data[i + 2] & 0xff) << 16 | (data[i + 3] & 0xff) << 24;
            k *= m;
            k ^= k >>> r;
            k *= m;
            h *= m;
            h ^= k;
        }
        int base = length & ~3;
        switch (length % 4) {
            case 3: h ^= (data[base + 2] & 0xff) << 16; // fall through
            case 2: h ^= (data[base + 1] & 0xff) << 8; // fall through
            case 1: h ^= data[base] & 0xff; h *= m; break;
            default: break;
        }
        h ^= h >>> 13;
        h *= m;
        h ^= h >>> 15;
        return h;
    }

    static int javaPartition(byte[] key, int n) {
        return (murmur2(key) & 0x7fffffff) % n;
    }

    static String unique(String prefix) {
        return prefix + "-" + UUID.randomUUID().toString().substring(0, 8);
    }

    static void waitFor(String what, long timeoutMs, BooleanSupplier cond) {
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (!cond.getAsBoolean()) {
            check(System.currentTimeMillis() < deadline, () -> "timed out after " + timeoutMs / 1000 + "s waiting for " + what);
            try {
                Thread.sleep(50); // polling a condition, with a deadline
            } catch (InterruptedException e) {
                throw new RuntimeException(e);
            }
        }
    }

    static byte[] b(String s) { return s == null ? null : s.getBytes(StandardCharsets.UTF_8); }

    static Admin admin;

    static void createTopic(String name, int partitions, Map<String, String> configs) throws Exception {
        admin.createTopics(List.of(new NewTopic(name, partitions, (short) 1).configs(configs))).all().get(30, TimeUnit.SECONDS);
        waitFor("metadata of " + name, 30_000, () -> {
            try {
                TopicDescription d = admin.describeTopics(List.of(name)).allTopicNames().get(10, TimeUnit.SECONDS).get(name);
                if (d.partitions().size() != partitions || !d.partitions().stream().allMatch(p -> p.leader() != null)) return false;
                // Metadata can name the leader before that broker serves the partition; a
                // produce then gets NOT_LEADER_OR_FOLLOWER, which the Java producer (KIP-951)
                // can stall on. ListOffsets is answered only once the leader is ready.
                Map<TopicPartition, org.apache.kafka.clients.admin.OffsetSpec> specs = new HashMap<>();
                for (int p = 0; p < partitions; p++) specs.put(new TopicPartition(name, p), org.apache.kafka.clients.admin.OffsetSpec.latest());
                admin.listOffsets(specs).all().get(10, TimeUnit.SECONDS);
                return true;
            } catch (Exception e) {
                return false;
            }
        });
    }

    static KafkaProducer<byte[], byte[]> producer(Map<String, Object> extra) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, BOOTSTRAP);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        p.putAll(extra);
        return new KafkaProducer<>(p);
    }

    static KafkaConsumer<byte[], byte[]> consumer(String group, Map<String, Object> extra) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, BOOTSTRAP);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 10_000);
        p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, 500);
        p.putAll(extra);
        return new KafkaConsumer<>(p);
    }

    /** n records: keyed with headers; every 7th has a null key, every 5th keyed one a null value. */
    static List<ProducerRecord<byte[], byte[]>> sample(String topic, String tag, int n) {
        List<ProducerRecord<byte[], byte[]>> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            String id = tag + "-" + i;
            byte[] key = i % 7 == 3 ? null : b("key-" + (i % 23));
            byte[] value = (i % 5 == 4 && key != null) ? null : b("value-" + id);
            List<Header> headers = List.of(new RecordHeader("id", b(id)), new RecordHeader("n", b(Integer.toString(i))));
            out.add(new ProducerRecord<>(topic, null, null, key, value, headers));
        }
        return out;
    }

    static List<Sent> produceAll(KafkaProducer<byte[], byte[]> p, List<ProducerRecord<byte[], byte[]>> recs) throws Exception {
        List<Future<RecordMetadata>> fs = new ArrayList<>();
        for (ProducerRecord<byte[], byte[]> r : recs) fs.add(p.send(r));
        p.flush();
        List<Sent> out = new ArrayList<>();
        for (int i = 0; i < recs.size(); i++) {
            RecordMetadata md = fs.get(i).get(30, TimeUnit.SECONDS);
            ProducerRecord<byte[], byte[]> r = recs.get(i);
            String id = new String(r.headers().lastHeader("id").value(), StandardCharsets.UTF_8);
            out.add(new Sent(id, r.key(), r.value(), Arrays.asList(r.headers().toArray()), md.partition(), md.offset()));
        }
        return out;
    }

    static void checkKeyed(List<Sent> sent, int partitions, String what) {
        for (Sent s : sent) {
            if (s.key() != null) {
                checkEq(s.partition(), javaPartition(s.key(), partitions), what + ": partition of key " + new String(s.key(), StandardCharsets.UTF_8) + " (murmur2)");
            }
        }
    }

    /** Each record exactly once, intact, where the producer was told, in per-partition order. */
    static void verify(List<Sent> sent, List<Got> got, String what) {
        Map<String, Sent> byId = new HashMap<>();
        for (Sent s : sent) byId.put(s.id(), s);
        Map<String, Got> seen = new HashMap<>();
        Map<Integer, Long> last = new HashMap<>();
        for (Got g : got) {
            Got prev = seen.put(g.id(), g);
            check(prev == null, () -> what + ": record " + g.id() + " consumed twice, at " + prev.partition() + "/" + prev.offset() + " and " + g.partition() + "/" + g.offset());
            Sent s = byId.get(g.id());
            check(s != null, () -> what + ": consumed a record that was not produced: " + g.id());
            checkEq(g.partition() + "/" + g.offset(), s.partition() + "/" + s.offset(), what + ": partition/offset of " + g.id());
            check(Arrays.equals(g.key(), s.key()) && Arrays.equals(g.value(), s.value()), () -> what + ": key/value of " + g.id() + " differ");
            checkEq(g.headers(), s.headers(), what + ": headers of " + g.id());
            Long before = last.put(g.partition(), g.offset());
            check(before == null || before < g.offset(), () -> what + ": partition " + g.partition() + " went from offset " + before + " to " + g.offset());
        }
        checkEq(seen.size(), sent.size(), what + ": distinct records consumed");
    }

    static List<Got> consumeN(KafkaConsumer<byte[], byte[]> c, int n) {
        List<Got> out = new ArrayList<>();
        long deadline = System.currentTimeMillis() + 60_000;
        while (out.size() < n) {
            int have = out.size();
            check(System.currentTimeMillis() < deadline, () -> "timed out waiting for " + n + " records (got " + have + ")");
            for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200))) out.add(Got.of(r));
        }
        var extra = c.poll(Duration.ofSeconds(1));
        check(extra.isEmpty(), () -> extra.count() + " unexpected extra records");
        return out;
    }

    // ---- steps ------------------------------------------------------------------------

    static String topic, group;
    static KafkaProducer<byte[], byte[]> mainProducer;
    static List<Sent> first;

    static void createMainTopic() throws Exception {
        topic = unique("java-main");
        createTopic(topic, PARTITIONS, Map.of());
    }

    static void produceKeyed() throws Exception {
        // The Java producer is idempotent with acks=all by default.
        mainProducer = producer(Map.of());
        first = produceAll(mainProducer, sample(topic, "a", 300));
        checkKeyed(first, PARTITIONS, "keyed records");
    }

    static void groupConsumes() {
        group = unique("java-group");
        try (KafkaConsumer<byte[], byte[]> c = consumer(group, Map.of())) {
            c.subscribe(List.of(topic));
            List<Got> got = consumeN(c, first.size());
            verify(first, got, "first consumer");
            c.commitSync();
            Map<Integer, Long> ends = new HashMap<>();
            for (Got g : got) ends.merge(g.partition(), g.offset() + 1, Math::max);
            Set<TopicPartition> tps = new HashSet<>();
            for (int p = 0; p < PARTITIONS; p++) tps.add(new TopicPartition(topic, p));
            Map<TopicPartition, OffsetAndMetadata> committed = c.committed(tps, Duration.ofSeconds(10));
            for (int p = 0; p < PARTITIONS; p++) {
                OffsetAndMetadata o = committed.get(new TopicPartition(topic, p));
                checkEq(o == null ? null : o.offset(), ends.get(p), "committed offset of partition " + p);
            }
        }
    }

    static void restartedConsumerResumes() throws Exception {
        List<Sent> more = produceAll(mainProducer, sample(topic, "b", 100));
        try (KafkaConsumer<byte[], byte[]> c = consumer(group, Map.of())) {
            c.subscribe(List.of(topic));
            verify(more, consumeN(c, more.size()), "restarted consumer");
            c.commitSync();
        }
    }

    /** A group member polling in its own thread; commits before partitions are taken away. */
    static final class Member extends Thread {
        final String name;
        final String grp, tpc;
        final List<Got> sink;
        final Set<Integer> owned = java.util.concurrent.ConcurrentHashMap.newKeySet();
        final AtomicBoolean stop = new AtomicBoolean();
        final AtomicReference<Throwable> error = new AtomicReference<>();

        Member(String name, String grp, String tpc, List<Got> sink) {
            this.name = name;
            this.grp = grp;
            this.tpc = tpc;
            this.sink = sink;
            setDaemon(true);
        }

        @Override
        public void run() {
            try (KafkaConsumer<byte[], byte[]> c = consumer(grp, Map.of(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG,
                    "org.apache.kafka.clients.consumer.RangeAssignor"))) {
                c.subscribe(List.of(tpc), new ConsumerRebalanceListener() {
                    @Override
                    public void onPartitionsRevoked(Collection<TopicPartition> parts) {
                        c.commitSync();
                        for (TopicPartition tp : parts) owned.remove(tp.partition());
                    }

                    @Override
                    public void onPartitionsAssigned(Collection<TopicPartition> parts) {
                        for (TopicPartition tp : parts) owned.add(tp.partition());
                    }
                });
                while (!stop.get()) {
                    for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(100))) sink.add(Got.of(r));
                }
                c.commitSync();
            } catch (Throwable t) {
                error.set(t);
            }
        }
    }

    static void rebalance() throws Exception {
        String t = unique("java-group2");
        String g = unique("java-split");
        createTopic(t, 6, Map.of());
        List<Got> sink = new CopyOnWriteArrayList<>();
        List<Sent> all = new ArrayList<>(produceAll(mainProducer, sample(t, "c", 120)));
        List<Member> members = new ArrayList<>(List.of(new Member("m1", g, t, sink), new Member("m2", g, t, sink)));
        members.forEach(Thread::start);
        BooleanSupplier split = () -> {
            Set<Integer> union = new HashSet<>();
            int total = 0;
            for (Member m : members) {
                check(m.error.get() == null, () -> "member " + m.name + " failed: " + m.error.get());
                if (m.owned.isEmpty()) return false;
                union.addAll(m.owned);
                total += m.owned.size();
            }
            return union.size() == 6 && total == 6;
        };
        try {
            waitFor("two members to split 6 partitions", 60_000, split);
            waitFor("the first batch to be consumed", 60_000, () -> sink.size() >= 120);
            Member third = new Member("m3", g, t, sink);
            members.add(third);
            third.start();
            all.addAll(produceAll(mainProducer, sample(t, "d", 120)));
            waitFor("a rebalance giving each of three members some partitions", 60_000, split);
            all.addAll(produceAll(mainProducer, sample(t, "e", 120)));
            waitFor("all " + all.size() + " records across three members", 60_000, () -> split.getAsBoolean() | true && sink.size() >= all.size());
        } finally {
            members.forEach(m -> m.stop.set(true));
            for (Member m : members) m.join(30_000);
        }
        List<Got> got = new ArrayList<>(sink);
        got.sort((x, y) -> x.partition() != y.partition() ? Integer.compare(x.partition(), y.partition()) : Long.compare(x.offset(), y.offset()));
        verify(all, got, "three-member group");
    }

    static void codecs() throws Exception {
        for (String codec : List.of("gzip", "snappy", "lz4", "zstd")) {
            String t = unique("java-" + codec);
            createTopic(t, 2, Map.of());
            List<ProducerRecord<byte[], byte[]>> recs = new ArrayList<>();
            for (int i = 0; i < 200; i++) {
                String id = codec + "-" + i;
                recs.add(new ProducerRecord<>(t, null, null, b("k" + i), b((codec + " payload " + i + " ").repeat(40)),
                        List.of(new RecordHeader("id", b(id)))));
            }
            List<Sent> sent;
            try (KafkaProducer<byte[], byte[]> p = producer(Map.of(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec, ProducerConfig.LINGER_MS_CONFIG, 20))) {
                sent = produceAll(p, recs);
            }
            checkKeyed(sent, 2, codec);
            try (KafkaConsumer<byte[], byte[]> c = consumer(unique("java-codec"), Map.of())) {
                c.subscribe(List.of(t));
                verify(sent, consumeN(c, sent.size()), codec + " round trip");
            }
        }
    }

    static void bigRecord() throws Exception {
        String t = unique("java-big");
        createTopic(t, 1, Map.of("max.message.bytes", Integer.toString(BIG_TOPIC_MAX_MESSAGE_BYTES)));
        byte[] value = new byte[ONE_MIB];
        for (int i = 0; i < value.length; i++) value[i] = (byte) ((i * 7919L + 13) % 251);
        List<Sent> sent;
        try (KafkaProducer<byte[], byte[]> p = producer(Map.of(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, BIG_TOPIC_MAX_MESSAGE_BYTES))) {
            sent = produceAll(p, List.of(new ProducerRecord<>(t, null, null, b("big"), value, List.of(new RecordHeader("id", b("big"))))));
        }
        try (KafkaConsumer<byte[], byte[]> c = consumer(unique("java-big"), Map.of(
                ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, 4 * ONE_MIB, ConsumerConfig.FETCH_MAX_BYTES_CONFIG, 8 * ONE_MIB))) {
            c.subscribe(List.of(t));
            List<Got> got = consumeN(c, 1);
            checkEq(got.get(0).value().length, ONE_MIB, "size of the consumed 1 MiB record");
            verify(sent, got, "1 MiB record");
        }
    }

    static void offsetsForTimes() throws Exception {
        String t = unique("java-time");
        createTopic(t, 1, Map.of());
        long base = System.currentTimeMillis() - 60_000;
        List<ProducerRecord<byte[], byte[]>> recs = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            recs.add(new ProducerRecord<>(t, 0, base + i * 1000L, null, b("t" + i), List.of(new RecordHeader("id", b("t" + i)))));
        }
        produceAll(mainProducer, recs);
        TopicPartition tp = new TopicPartition(t, 0);
        try (KafkaConsumer<byte[], byte[]> c = consumer(unique("java-time"), Map.of())) {
            checkEq(c.beginningOffsets(List.of(tp)).get(tp), 0L, "earliest offset");
            checkEq(c.endOffsets(List.of(tp)).get(tp), 10L, "latest offset");
            long[][] cases = {{base, 0}, {base + 4500, 5}, {base + 9000, 9}, {base - 10_000, 0}};
            for (long[] cs : cases) {
                OffsetAndTimestamp o = c.offsetsForTimes(Map.of(tp, cs[0])).get(tp);
                check(o != null, () -> "no offset for timestamp base+" + (cs[0] - base) + "ms");
                checkEq(o.offset(), cs[1], "offset for timestamp base+" + (cs[0] - base) + "ms");
                checkEq(o.timestamp(), base + cs[1] * 1000, "timestamp for base+" + (cs[0] - base) + "ms");
            }
            checkEq(c.offsetsForTimes(Map.of(tp, base + 60_000_000L)).get(tp), null, "offset for a timestamp after the last record");
        }
    }

    static void idempotent() throws Exception {
        String t = unique("java-idem");
        createTopic(t, 3, Map.of());
        List<Sent> sent;
        try (KafkaProducer<byte[], byte[]> p = producer(Map.of(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true, ProducerConfig.ACKS_CONFIG, "all",
                ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, 5, ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 60000))) {
            sent = produceAll(p, sample(t, "i", 500));
        }
        checkKeyed(sent, 3, "idempotent producer");
        try (KafkaConsumer<byte[], byte[]> c = consumer(unique("java-idem"), Map.of())) {
            c.subscribe(List.of(t));
            verify(sent, consumeN(c, sent.size()), "idempotent producer");
        }
    }

    interface Step {
        void run() throws Exception;
    }

    public static void main(String[] args) {
        int[] vectors = {-973932308, -790332482, -985981536, -1486304829, -58897971, 479470107};
        String[] inputs = {"21", "foobar", "a-little-bit-long-string", "a-little-bit-longer-string", "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", "abc"};
        for (int i = 0; i < inputs.length; i++) {
            if (murmur2(b(inputs[i])) != vectors[i]) throw new AssertionError("murmur2 self-check failed for " + inputs[i]);
        }
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, BOOTSTRAP);
        admin = Admin.create(ap);
        Object[][] steps = {
            {"create topic with 4 partitions (Admin)", (Step) Scenario::createMainTopic},
            {"produce keyed records with headers, null keys and null values", (Step) Scenario::produceKeyed},
            {"group consumes all exactly once in per-partition order, commits", (Step) Scenario::groupConsumes},
            {"restarted consumer resumes at the committed offset", (Step) Scenario::restartedConsumerResumes},
            {"two members split partitions, a third joins, nothing lost", (Step) Scenario::rebalance},
            {"gzip, snappy, lz4, zstd round-trip", (Step) Scenario::codecs},
            {"1 MiB record round-trips", (Step) Scenario::bigRecord},
            {"ListOffsets by timestamp (offsetsForTimes)", (Step) Scenario::offsetsForTimes},
            {"idempotent producer writes each record once", (Step) Scenario::idempotent},
        };
        int passed = 0, failed = 0;
        for (Object[] s : steps) {
            long start = System.currentTimeMillis();
            String took = "";
            try {
                ((Step) s[1]).run();
                passed++;
                took = String.format("%.1fs", (System.currentTimeMillis() - start) / 1000.0);
                System.out.println("ok   java: " + s[0] + " (" + took + ")");
            } catch (Throwable e) {
                failed++;
                took = String.format("%.1fs", (System.currentTimeMillis() - start) / 1000.0);
                System.out.println("FAIL java: " + s[0] + " (" + took + "): " + e);
            }
            System.out.flush();
        }
        if (mainProducer != null) mainProducer.close(Duration.ofSeconds(10));
        admin.close(Duration.ofSeconds(10));
        System.out.println("java: " + passed + " passed, " + failed + " failed");
        System.exit(failed == 0 ? 0 : 1);
    }
}
