//! DescribeInstances' answer, each reservation built as it is written: a page of 10,000
//! instances built whole first is tens of megabytes of small parts that are cold again
//! by the time the encoder reads them; built one reservation at a time, each is written
//! while it is still in the cache and its memory is reused by the next.

use std::collections::HashMap;

use serde::ser::{Serialize, SerializeSeq, SerializeStruct, Serializer};
use shapes::ec2::{DescribeInstancesResult, Reservation};
use shapes::ec2_xml::{self, Ec2Xml};

use super::render;
use crate::instance_network::InstanceNetwork;
use state::instances::InstanceRow;
use state::volumes::VolumeRow;

/// The instances of one DescribeInstances page, with what their answer shows of them.
/// It serializes exactly as the `DescribeInstancesResult` [`InstancesPage::build`] gives.
#[derive(Debug)]
pub struct InstancesPage {
    pub owner: String,
    /// The instances, in reservation order (a reservation's rows are adjacent).
    pub rows: Vec<InstanceRow>,
    pub tags: HashMap<String, Vec<(String, String)>>,
    pub nets: HashMap<String, InstanceNetwork>,
    pub vols: HashMap<String, Vec<VolumeRow>>,
    pub next_token: Option<String>,
}

impl InstancesPage {
    /// The page's reservations, each built when it is asked for.
    fn reservations(&self) -> impl Iterator<Item = Reservation> + '_ {
        self.groups().map(|group| {
            let group: Vec<&InstanceRow> = group.iter().collect();
            render::reservation(&self.owner, &group, &self.tags, &self.nets, &self.vols)
        })
    }

    fn groups(&self) -> impl Iterator<Item = &[InstanceRow]> + '_ {
        self.rows
            .chunk_by(|a, b| a.reservation_id == b.reservation_id)
    }

    /// The whole answer, built at once.
    pub fn build(&self) -> DescribeInstancesResult {
        DescribeInstancesResult {
            next_token: self.next_token.clone(),
            reservations: Some(self.reservations().collect()),
        }
    }
}

impl Serialize for InstancesPage {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The members of `DescribeInstancesResult`, in its order.
        let members = 1 + usize::from(self.next_token.is_some());
        let mut st = s.serialize_struct("DescribeInstancesResult", members)?;
        match &self.next_token {
            Some(token) => st.serialize_field("NextToken", token)?,
            None => st.skip_field("NextToken")?,
        }
        st.serialize_field("Reservations", &Reservations(self))?;
        st.end()
    }
}

impl Ec2Xml for InstancesPage {
    /// The members of `DescribeInstancesResult`, as its generated writer writes them.
    fn write_content(&self, out: &mut Vec<u8>) {
        if let Some(token) = &self.next_token {
            ec2_xml::element(out, "nextToken", token);
        }
        ec2_xml::open(out, "reservationSet");
        let count = self.groups().count();
        for (i, r) in self.reservations().enumerate() {
            let start = out.len();
            ec2_xml::element(out, "item", &r);
            if i == 0 {
                // Room for the rest at about the first one's size, rather than growing
                // (and copying) the answer by doubling.
                let rest = (out.len() - start).saturating_mul(count - 1);
                out.reserve(rest.saturating_add(rest / 8));
            }
        }
        ec2_xml::close(out, "reservationSet");
    }
}

/// The `Reservations` list of a page.
struct Reservations<'a>(&'a InstancesPage);

impl Serialize for Reservations<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.groups().count()))?;
        for r in self.0.reservations() {
            seq.serialize_element(&r)?;
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use state::instances::InstanceState;

    fn row(seq: i64, reservation: &str) -> InstanceRow {
        InstanceRow {
            seq,
            reservation_id: reservation.into(),
            key_name: Some("k <&> 'x'".into()),
            launch_time: "2026-12-07T11:00:00.000Z".into(),
            ..InstanceRow::example(&format!("i-{seq:017x}"), InstanceState::Running)
        }
    }

    fn page(next_token: Option<&str>) -> InstancesPage {
        let rows = vec![row(1, "r-1"), row(2, "r-1"), row(3, "r-2")];
        let mut tags = HashMap::new();
        tags.insert(rows[1].id.clone(), vec![("Name".into(), "web".into())]);
        InstancesPage {
            owner: "123456789012".into(),
            rows,
            tags,
            nets: HashMap::new(),
            vols: HashMap::new(),
            next_token: next_token.map(str::to_string),
        }
    }

    #[test]
    fn a_page_serializes_as_the_answer_built_whole() {
        for token in [None, Some("seq-3")] {
            let p = page(token);
            let built = p.build();
            assert_eq!(built.reservations.as_ref().map(Vec::len), Some(2));
            assert_eq!(
                serde_json::to_value(&p).unwrap(),
                serde_json::to_value(&built).unwrap()
            );
        }
    }

    #[test]
    fn the_typed_encoder_writes_a_page_as_the_answer_built_whole() {
        let model = wire::ServiceModel::from_json(shapes::ec2::MODEL_JSON).unwrap();
        for protocol in [
            wire::Protocol::Ec2,
            wire::Protocol::Json,
            wire::Protocol::RpcV2Cbor,
        ] {
            let p = page(Some("seq-3"));
            let streamed =
                wire::encode::typed::encode_output(&model, protocol, "DescribeInstances", &p, "r")
                    .unwrap();
            let whole = wire::encode::typed::encode_output(
                &model,
                protocol,
                "DescribeInstances",
                &p.build(),
                "r",
            )
            .unwrap();
            assert_eq!(streamed.body, whole.body, "{protocol:?}");
            assert!(streamed.body.len() > 500);
        }
    }

    #[test]
    fn a_page_writes_itself_as_the_answer_built_whole() {
        let model = wire::ServiceModel::from_json(shapes::ec2::MODEL_JSON).unwrap();
        for token in [None, Some("seq-3")] {
            let p = page(token);
            let written = wire::encode_ec2_written(&model, "DescribeInstances", "r", |out| {
                p.write_content(out)
            })
            .unwrap();
            let whole = wire::encode::typed::encode_output(
                &model,
                wire::Protocol::Ec2,
                "DescribeInstances",
                &p.build(),
                "r",
            )
            .unwrap();
            assert_eq!(written.body, whole.body);
        }
    }
}
