//! The element table as an IANA-style XML registry, for collectors that read element
//! definitions from a file (libfixbuf's `ipfixDump --element-file`, ipfixcol2's libfds):
//! every enterprise element qof knows (CERT's, QoF's, CESNET's, Flowmon's).

use super::{IeType, InfoElement, TABLE};
use std::fmt::Write;

/// The registry's data type name of `ty` (RFC 7012 §3.1).
pub fn type_name(ty: IeType) -> &'static str {
    use IeType::*;
    match ty {
        Unsigned8 => "unsigned8",
        Unsigned16 => "unsigned16",
        Unsigned32 => "unsigned32",
        Unsigned64 => "unsigned64",
        Signed8 => "signed8",
        Signed16 => "signed16",
        Signed32 => "signed32",
        Signed64 => "signed64",
        Float32 => "float32",
        Float64 => "float64",
        Boolean => "boolean",
        MacAddress => "macAddress",
        OctetArray => "octetArray",
        String => "string",
        DateTimeSeconds => "dateTimeSeconds",
        DateTimeMilliseconds => "dateTimeMilliseconds",
        DateTimeMicroseconds => "dateTimeMicroseconds",
        DateTimeNanoseconds => "dateTimeNanoseconds",
        Ipv4Address => "ipv4Address",
        Ipv6Address => "ipv6Address",
        BasicList => "basicList",
        SubTemplateList => "subTemplateList",
        SubTemplateMultiList => "subTemplateMultiList",
    }
}

fn record(ie: &InfoElement, out: &mut String) {
    let _ = write!(
        out,
        "    <record>\n      <name>{}</name>\n      <dataType>{}</dataType>\n",
        ie.name,
        type_name(ie.ty)
    );
    if ie.reversible {
        out.push_str("      <cert:reversible>true</cert:reversible>\n");
    }
    let _ = write!(
        out,
        "      <cert:enterpriseId>{}</cert:enterpriseId>\n      <elementId>{}</elementId>\n      \
         <status>current</status>\n    </record>\n",
        ie.pen, ie.id
    );
}

/// The XML registry of every enterprise element in the table.
pub fn registry_xml() -> String {
    let mut out = String::from(
        "<?xml version='1.0' encoding='UTF-8'?>\n\
         <registry id=\"qof_ipfix\" xmlns=\"http://www.iana.org/assignments\" \
         xmlns:cert=\"http://www.cert.org/ipfix\">\n\
         \x20 <title>Enterprise Information Elements qof exports or reads</title>\n\
         \x20 <registry id=\"qof-information-elements\">\n",
    );
    for ie in TABLE.iter().filter(|ie| ie.pen != super::pen::IANA) {
        record(ie, &mut out);
    }
    out.push_str("  </registry>\n</registry>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_enterprise_element_is_listed_once_with_its_type() {
        let xml = registry_xml();
        let enterprise = TABLE.iter().filter(|ie| ie.pen != 0).count();
        assert_eq!(xml.matches("<record>").count(), enterprise);
        assert!(xml.contains(
            "<name>packetLength</name>\n      <dataType>unsigned16</dataType>\n      \
             <cert:enterpriseId>8057</cert:enterpriseId>\n      <elementId>1013</elementId>"
        ));
    }
}
