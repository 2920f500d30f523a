//! Certificates made at test time (rcgen): a certificate authority and the leaf
//! certificates it issues, for the HTTPS tests of one server and of a cluster's nodes.

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use rustls::pki_types::CertificateDer;

/// A certificate authority that issues leaf certificates.
pub struct Authority {
    certificate: rcgen::Certificate,
    key: KeyPair,
}

/// A leaf certificate and its key, in DER and PEM.
pub struct Leaf {
    pub der: CertificateDer<'static>,
    pub pem: String,
    pub key_pem: String,
    pub key_der: Vec<u8>,
}

impl Authority {
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        Self { certificate: params.self_signed(&key).unwrap(), key }
    }

    /// A leaf for `names` (DNS names or IP addresses) with one extended key usage.
    pub fn issue(&self, names: &[&str], purpose: ExtendedKeyUsagePurpose) -> Leaf {
        self.issue_for(names, vec![purpose])
    }

    /// A leaf for `names` with the given extended key usages (a cluster node's certificate
    /// serves as a server's and, to its peers, as a client's).
    pub fn issue_for(&self, names: &[&str], purposes: Vec<ExtendedKeyUsagePurpose>) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        params.extended_key_usages = purposes;
        let certificate = params.signed_by(&key, &self.certificate, &self.key).unwrap();
        Leaf {
            der: certificate.der().clone(),
            pem: certificate.pem(),
            key_pem: key.serialize_pem(),
            key_der: key.serialize_der(),
        }
    }

    pub fn pem(&self) -> String {
        self.certificate.pem()
    }

    pub fn roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.certificate.der().clone()).unwrap();
        roots
    }
}
