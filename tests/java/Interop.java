// The Java client side of the interoperability tests (tests/it/real_kafka.rs). Run as a single-file program on the
// Kafka classpath that scripts/kafka.sh caches:  java -cp "$KC_KAFKA_LIBS/*" tests/java/Interop.java ARGS
//
//   produce BROKERS TOPIC COMPRESSION N   writes N records with the Java producer's default partitioner:
//                                         key "key-<i>", value "<COMPRESSION>-value-<i>", header "src"="java";
//                                         prints one line per record: key<TAB>partition<TAB>offset
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Future;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.StringSerializer;

public class Interop {
    public static void main(String[] args) throws Exception {
        if (args.length != 5 || !args[0].equals("produce")) {
            System.err.println("usage: produce BROKERS TOPIC COMPRESSION N");
            System.exit(2);
        }
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, args[1]);
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, args[3]);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "20");
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        int n = Integer.parseInt(args[4]);
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            List<Future<RecordMetadata>> sent = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                ProducerRecord<String, String> r =
                    new ProducerRecord<>(args[2], "key-" + i, args[3] + "-value-" + i);
                r.headers().add("src", "java".getBytes());
                sent.add(producer.send(r));
            }
            producer.flush();
            for (int i = 0; i < n; i++) {
                RecordMetadata m = sent.get(i).get();
                System.out.println("key-" + i + "\t" + m.partition() + "\t" + m.offset());
            }
        }
    }
}
