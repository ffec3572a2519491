//! JSON orders, as the original demo's `producer.py` wrote them, keyed by customer.

use base64::Engine;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdkafka::error::KafkaError;
use rdkafka::producer::BaseRecord;
use serde_json::json;

use super::avro::{register, to_avro, Registered};
use super::produce::TalliedProducer;
use super::{minimal_twos_complement, GenError, ProduceReport};

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
    /// Write values with Confluent's `AvroConverter` instead (the `with_schema` Connect schema
    /// in Avro form, registered as `<topic>-value` at this registry); keys stay strings.
    pub schema_registry: Option<String>,
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
            base64::engine::general_purpose::STANDARD.encode(minimal_twos_complement(cents.into()));
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

/// `count` orders with Avro values as `produce_orders` frames them (schema id 1), and the Avro
/// schema's text: what the benchmark example decodes without a broker or registry.
pub fn orders_avro(count: u64, seed: u64) -> Result<(String, Vec<Vec<u8>>), GenError> {
    let (_, value) = order_json(&mut StdRng::seed_from_u64(0), 0, 1, true);
    let connect = serde_json::from_str::<serde_json::Value>(&value)
        .map_err(|e| GenError::InvalidOption(e.to_string()))?["schema"]
        .clone();
    let registered = super::avro::with_id(&connect, 1)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let values = (0..count)
        .map(|i| {
            let (_, value) = order_json(&mut rng, i, 1000, true);
            let envelope: serde_json::Value = serde_json::from_str(&value).unwrap_or_default();
            registered.frame(to_avro(&connect, &envelope["payload"]))
        })
        .collect();
    Ok((super::avro::avro_schema(&connect).to_string(), values))
}

/// Sends `count` orders and waits until every one is acknowledged.
pub async fn produce_orders(opts: &OrdersOptions) -> Result<ProduceReport, GenError> {
    let avro = match &opts.schema_registry {
        Some(url) => {
            let (_, value) = order_json(&mut StdRng::seed_from_u64(0), 0, 1, true);
            let connect = serde_json::from_str::<serde_json::Value>(&value)
                .map_err(|e| GenError::InvalidOption(e.to_string()))?["schema"]
                .clone();
            let registered = register(url, &format!("{}-value", opts.topic), &connect).await?;
            Some((registered, connect))
        }
        None => None,
    };
    if let Some(p) = opts.partitions {
        super::create_topic(&opts.bootstrap_servers, &opts.topic, p).await?;
    }
    let opts = opts.clone();
    tokio::task::spawn_blocking(move || produce_blocking(&opts, avro.as_ref()))
        .await
        .map_err(|_| GenError::Kafka(KafkaError::Canceled))?
}

fn produce_blocking(
    opts: &OrdersOptions,
    avro: Option<&(Registered, serde_json::Value)>,
) -> Result<ProduceReport, GenError> {
    let producer = TalliedProducer::new(&opts.bootstrap_servers, &[])?;
    let mut rng = StdRng::seed_from_u64(opts.seed);
    for i in 0..opts.count {
        producer.pace(i, opts.rate);
        let (key, value) = order_json(
            &mut rng,
            opts.start_id + i,
            opts.customers,
            opts.with_schema || avro.is_some(),
        );
        let value = match avro {
            Some((registered, connect)) => {
                let envelope: serde_json::Value = serde_json::from_str(&value).unwrap_or_default();
                registered.frame(to_avro(connect, &envelope["payload"]))
            }
            None => value.into_bytes(),
        };
        producer.send(BaseRecord::to(&opts.topic).key(&key).payload(&value))?;
    }
    producer.finish(&opts.topic, opts.count)
}
