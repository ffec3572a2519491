//! JSON orders, as the original demo's `producer.py` wrote them, keyed by customer.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Message};
use serde_json::json;

use super::{GenError, ProduceReport};

const PRODUCTS: &[&str] = &[
    "laptop",
    "phone",
    "tablet",
    "monitor",
    "keyboard",
    "mouse",
    "headphones",
    "webcam",
    "dock",
    "charger",
];
const STATUSES: &[&str] = &["pending", "paid", "shipped", "delivered", "cancelled"];

#[derive(Debug, Clone)]
pub struct OrdersOptions {
    pub bootstrap_servers: String,
    pub topic: String,
    pub count: u64,
    /// Records per second; `None` sends as fast as the broker takes them.
    pub rate: Option<f64>,
    pub seed: u64,
    /// Create the topic with this many partitions first.
    pub partitions: Option<i32>,
    /// First order id; ids are `start_id..start_id+count`.
    pub start_id: u64,
    pub customers: u64,
    /// Write the JsonConverter envelope (`schemas.enable=true`) instead of plain JSON.
    pub with_schema: bool,
}

/// One order as the generator writes it: `(key, value)`.
pub fn order_json(
    rng: &mut StdRng,
    order_id: u64,
    customers: u64,
    with_schema: bool,
) -> (String, String) {
    let customer_id = rng.gen_range(1..=customers.max(1));
    let product = PRODUCTS[rng.gen_range(0..PRODUCTS.len())];
    let quantity: i64 = rng.gen_range(1..=10);
    let cents: i64 = rng.gen_range(100..=50_000);
    let status = STATUSES[rng.gen_range(0..STATUSES.len())];
    let now = chrono::Utc::now();
    let value = if with_schema {
        // Connect's Decimal: base64 of the big-endian unscaled value; Timestamp: epoch ms.
        let price =
            base64::engine::general_purpose::STANDARD.encode(minimal_twos_complement(cents));
        json!({
            "schema": {"type": "struct", "name": "orders.Order", "optional": false, "fields": [
                {"field": "order_id", "type": "int64", "optional": false},
                {"field": "customer_id", "type": "int64", "optional": false},
                {"field": "product", "type": "string", "optional": false},
                {"field": "quantity", "type": "int32", "optional": false},
                {"field": "price", "type": "bytes", "optional": false, "name": "org.apache.kafka.connect.data.Decimal",
                 "version": 1, "parameters": {"scale": "2", "connect.decimal.precision": "10"}},
                {"field": "status", "type": "string", "optional": false},
                {"field": "timestamp", "type": "int64", "optional": false, "name": "org.apache.kafka.connect.data.Timestamp", "version": 1}
            ]},
            "payload": {
                "order_id": order_id, "customer_id": customer_id, "product": product, "quantity": quantity,
                "price": price, "status": status, "timestamp": now.timestamp_millis()
            }
        })
    } else {
        json!({
            "order_id": order_id,
            "customer_id": customer_id,
            "product": product,
            "quantity": quantity,
            "price": cents as f64 / 100.0,
            "status": status,
            "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        })
    };
    (customer_id.to_string(), value.to_string())
}

/// The shortest big-endian two's-complement bytes of `v` (Connect's Decimal encoding): a
/// leading byte may only be dropped while the next one still carries the right sign bit.
fn minimal_twos_complement(v: i64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    while start < bytes.len() - 1 {
        let (b, next_negative) = (bytes[start], bytes[start + 1] & 0x80 != 0);
        if (b == 0x00 && !next_negative) || (b == 0xff && next_negative) {
            start += 1;
        } else {
            break;
        }
    }
    bytes[start..].to_vec()
}

#[derive(Default)]
struct Tally {
    report: ProduceReport,
    failed: u64,
    first_error: Option<String>,
}

struct Deliveries(Arc<Mutex<Tally>>);

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let Ok(mut t) = self.0.lock() else { return };
        match result {
            Ok(m) => {
                t.report.sent += 1;
                let e =
                    t.report
                        .partitions
                        .entry(m.partition())
                        .or_insert((m.offset(), m.offset(), 0));
                e.0 = e.0.min(m.offset());
                e.1 = e.1.max(m.offset());
                e.2 += 1;
            }
            Err((e, _)) => {
                t.failed += 1;
                t.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

/// Sends `count` orders and waits until every one is acknowledged.
pub async fn produce_orders(opts: &OrdersOptions) -> Result<ProduceReport, GenError> {
    if let Some(p) = opts.partitions {
        super::create_topic(&opts.bootstrap_servers, &opts.topic, p).await?;
    }
    let opts = opts.clone();
    tokio::task::spawn_blocking(move || produce_blocking(&opts))
        .await
        .map_err(|_| GenError::Kafka(KafkaError::Canceled))?
}

fn produce_blocking(opts: &OrdersOptions) -> Result<ProduceReport, GenError> {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let producer: ThreadedProducer<Deliveries> = ClientConfig::new()
        .set("bootstrap.servers", &opts.bootstrap_servers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "500000")
        .create_with_context(Deliveries(tally.clone()))?;
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let started = Instant::now();
    for i in 0..opts.count {
        if let Some(rate) = opts.rate.filter(|r| *r > 0.0) {
            let due = started + Duration::from_secs_f64(i as f64 / rate);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let (key, value) = order_json(
            &mut rng,
            opts.start_id + i,
            opts.customers,
            opts.with_schema,
        );
        let mut record = BaseRecord::to(&opts.topic).key(&key).payload(&value);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
    }
    producer.flush(Duration::from_secs(120))?;
    let mut t = tally
        .lock()
        .map_err(|_| GenError::Kafka(KafkaError::Canceled))?;
    t.report.topic = opts.topic.clone();
    t.report.elapsed = started.elapsed();
    if t.failed > 0 || t.report.sent != opts.count {
        return Err(GenError::Delivery {
            failed: opts.count - t.report.sent,
            total: opts.count,
            first: t
                .first_error
                .clone()
                .unwrap_or_else(|| "not acknowledged".into()),
        });
    }
    Ok(t.report.clone())
}

#[cfg(test)]
mod tests {
    use super::minimal_twos_complement;

    #[test]
    fn decimal_bytes_keep_their_sign() {
        assert_eq!(minimal_twos_complement(0), vec![0x00]);
        assert_eq!(minimal_twos_complement(127), vec![0x7f]);
        assert_eq!(minimal_twos_complement(200), vec![0x00, 0xc8]);
        assert_eq!(minimal_twos_complement(50_000), vec![0x00, 0xc3, 0x50]);
        assert_eq!(minimal_twos_complement(-1), vec![0xff]);
        assert_eq!(minimal_twos_complement(-129), vec![0xff, 0x7f]);
    }
}
