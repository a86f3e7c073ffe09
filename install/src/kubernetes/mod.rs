//! The Kubernetes target: typed objects (k8s-openapi) for the central cluster (scheduler, VictoriaMetrics
//! cluster, vmalert, Alertmanager) and one prober deployment per region cluster, written as YAML with a README.
//!
//! Secrets: prober tokens and the store password are generated when the manifests are (`Secrets::generate`)
//! and written as `stringData` into `*-secrets.yaml` files created 0600; the scheduler gets only the tokens'
//! SHA-256 hashes (its `tokens.json`). The TLS certificate and key are not generated here: they are given
//! (`Secrets::tls`, made by the installer's CA) or created by the user (`kubectl create secret`, see the
//! README) under the names [`TLS_SECRET`] and [`CA_SECRET`].

mod build;
mod central;
mod policy;
mod region;
mod secrets;

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use serde_json::Value;

pub use self::secrets::{Secrets, TlsMaterial};
use crate::plan::{Action, Change, Plan, Step, Target};
use crate::stack::Loaded;
use crate::yaml_out;

/// The secret holding the scheduler's certificate (`tls.crt`, `tls.key`) and the CA (`ca.crt`).
pub const TLS_SECRET: &str = "probenet-tls";
/// The secret holding the CA certificate (`ca.crt`) in each region's namespace.
pub const CA_SECRET: &str = "probenet-ca";
/// The probers' `/metrics` and `/healthz` port.
pub const PROBER_PORT: i32 = 9470;
/// vminsert's port.
pub const VMINSERT_PORT: i32 = 8480;
/// vmselect's port.
pub const VMSELECT_PORT: i32 = 8481;
/// vmstorage's HTTP port.
pub const VMSTORAGE_HTTP_PORT: i32 = 8482;
/// vmstorage's port for vminsert.
pub const VMSTORAGE_INSERT_PORT: i32 = 8400;
/// vmstorage's port for vmselect.
pub const VMSTORAGE_SELECT_PORT: i32 = 8401;
/// vmalert's port.
pub const VMALERT_PORT: i32 = 8880;
/// Alertmanager's port.
pub const ALERTMANAGER_PORT: i32 = 9093;

/// The scheduler's port: its container's, its Service's and the one probers dial, that of `scheduler.listen`.
pub fn scheduler_port(stack: &crate::stack::Stack) -> i32 {
    i32::from(stack.scheduler.listen.port())
}

/// One typed object.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    /// A namespace.
    Namespace(Namespace),
    /// A secret.
    Secret(Secret),
    /// A config map.
    ConfigMap(ConfigMap),
    /// A service.
    Service(Service),
    /// A deployment.
    Deployment(Deployment),
    /// A stateful set.
    StatefulSet(StatefulSet),
    /// A network policy.
    NetworkPolicy(NetworkPolicy),
}

impl Object {
    /// Its kind, as `kind:` writes it.
    pub fn kind(&self) -> &'static str {
        use k8s_openapi::Resource;
        match self {
            Self::Namespace(_) => Namespace::KIND,
            Self::Secret(_) => Secret::KIND,
            Self::ConfigMap(_) => ConfigMap::KIND,
            Self::Service(_) => Service::KIND,
            Self::Deployment(_) => Deployment::KIND,
            Self::StatefulSet(_) => StatefulSet::KIND,
            Self::NetworkPolicy(_) => NetworkPolicy::KIND,
        }
    }

    /// `namespace/name`, or `name` for a namespace.
    pub fn name(&self) -> String {
        let meta = match self {
            Self::Namespace(object) => &object.metadata,
            Self::Secret(object) => &object.metadata,
            Self::ConfigMap(object) => &object.metadata,
            Self::Service(object) => &object.metadata,
            Self::Deployment(object) => &object.metadata,
            Self::StatefulSet(object) => &object.metadata,
            Self::NetworkPolicy(object) => &object.metadata,
        };
        let name = meta.name.clone().unwrap_or_default();
        match &meta.namespace {
            Some(namespace) => format!("{namespace}/{name}"),
            None => name,
        }
    }

    /// The object as JSON, with `apiVersion` and `kind`.
    pub fn to_value(&self) -> Value {
        let value = match self {
            Self::Namespace(object) => serde_json::to_value(object),
            Self::Secret(object) => serde_json::to_value(object),
            Self::ConfigMap(object) => serde_json::to_value(object),
            Self::Service(object) => serde_json::to_value(object),
            Self::Deployment(object) => serde_json::to_value(object),
            Self::StatefulSet(object) => serde_json::to_value(object),
            Self::NetworkPolicy(object) => serde_json::to_value(object),
        };
        value.unwrap_or(Value::Null)
    }

    fn is_secret(&self) -> bool {
        matches!(self, Self::Secret(_))
    }
}

/// One file of objects.
#[derive(Debug, Clone, PartialEq)]
pub struct File {
    /// Its name in the cluster's directory, such as `30-scheduler.yaml`.
    pub name: String,
    /// Its objects, in apply order.
    pub objects: Vec<Object>,
}

impl File {
    /// Whether it holds secrets (written 0600).
    pub fn is_private(&self) -> bool {
        self.objects.iter().any(Object::is_secret)
    }

    /// Its YAML: one document per object.
    pub fn yaml(&self) -> String {
        let values: Vec<Value> = self.objects.iter().map(Object::to_value).collect();
        yaml_out::to_documents(&values)
    }
}

/// The objects of one cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// Its directory: `central` or `region-NAME`.
    pub dir: String,
    /// Its kubeconfig context (`None`: the current one).
    pub context: Option<String>,
    /// Its files, in apply order.
    pub files: Vec<File>,
}

/// Every cluster's objects.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifests {
    /// The stack's name.
    pub stack: String,
    /// The central cluster first, then each region.
    pub clusters: Vec<Cluster>,
    /// Whether the TLS secrets are included (else the README says how to create them).
    pub tls_included: bool,
    /// The names the scheduler's certificate must hold: its host and the regions' `scheduler_host`s.
    pub tls_names: Vec<String>,
}

/// Builds every object of `loaded`'s stack with these secrets.
pub fn manifests(loaded: &Loaded, secrets: &Secrets) -> Manifests {
    let mut clusters = vec![central::cluster(loaded, secrets)];
    for (name, region) in &loaded.stack.regions {
        clusters.push(region::cluster(loaded, name, region, secrets));
    }
    let mut tls_names = vec![loaded.stack.scheduler.host.clone()];
    for host in loaded.stack.regions.values().filter_map(|region| region.scheduler_host.as_ref()) {
        if !tls_names.contains(host) {
            tls_names.push(host.clone());
        }
    }
    Manifests { stack: loaded.stack.name.clone(), clusters, tls_included: secrets.tls.is_some(), tls_names }
}

impl Manifests {
    /// Writes `DIR/CLUSTER/*.yaml` (files with secrets 0600) and `DIR/README.md`; returns the files written.
    pub fn write(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        let mut written = Vec::new();
        for cluster in &self.clusters {
            let cluster_dir = dir.join(&cluster.dir);
            fs::create_dir_all(&cluster_dir)?;
            for file in &cluster.files {
                let path = cluster_dir.join(&file.name);
                write_file(&path, file.yaml().as_bytes(), file.is_private())?;
                written.push(path);
            }
        }
        let readme = dir.join("README.md");
        write_file(&readme, self.readme().as_bytes(), false)?;
        written.push(readme);
        Ok(written)
    }

    /// The plan of `install kubernetes --plan`: every object and the file it goes to.
    pub fn plan(&self, out: &Path, cost: crate::cost::Cost) -> Plan {
        let steps = self
            .clusters
            .iter()
            .flat_map(|cluster| {
                cluster.files.iter().flat_map(move |file| {
                    file.objects.iter().map(move |object| Step {
                        action: Action::Object {
                            cluster: cluster.dir.clone(),
                            file: format!("{}/{}", cluster.dir, file.name),
                            kind: object.kind().to_owned(),
                            name: object.name(),
                        },
                        change: Change::Create,
                    })
                })
            })
            .collect();
        Plan {
            stack: self.stack.clone(),
            target: Target::Kubernetes { out: out.to_owned() },
            steps,
            components: Vec::new(),
            cost,
        }
    }

    /// The README: how to apply the manifests, cluster by cluster.
    pub fn readme(&self) -> String {
        readme(self)
    }
}

fn write_file(path: &Path, contents: &[u8], private: bool) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let mode = if private { 0o600 } else { 0o644 };
    let mut file = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(path)?;
    // An existing file keeps its mode on open: set it.
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    file.write_all(contents)
}

fn readme(manifests: &Manifests) -> String {
    let mut out = format!(
        "# probenet stack {:?}: Kubernetes manifests\n\n\
         Generated by `probenet install kubernetes`. Files named `*-secrets.yaml` hold prober tokens and the store \
         password: they are created 0600; keep them out of version control (or seal them) and delete them once \
         applied if you keep no copy.\n\n",
        manifests.stack
    );
    if !manifests.tls_included {
        out.push_str(&format!(
            "## Before applying: the scheduler's certificate\n\n\
             The scheduler serves TLS with a certificate for the names probers reach it by ({}). Create it with \
             your CA (or `probenet install kubernetes` with a CA), then:\n\n\
             ```sh\nkubectl --context CENTRAL -n NAMESPACE create secret generic {TLS_SECRET} \\\n  \
             --from-file=tls.crt=server.pem --from-file=tls.key=server-key.pem --from-file=ca.crt=ca.pem\n\
             # in each region's cluster and namespace:\n\
             kubectl --context REGION -n REGION_NAMESPACE create secret generic {CA_SECRET} --from-file=ca.crt=ca.pem\n```\n\n",
            manifests.tls_names.iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", ")
        ));
    }
    out.push_str("## Apply\n\nIn this order: the central cluster first, then each region.\n\n```sh\n");
    for cluster in &manifests.clusters {
        let context = cluster.context.as_deref().map(|context| format!(" --context {context}")).unwrap_or_default();
        out.push_str(&format!("kubectl{context} apply -f {}/\n", cluster.dir));
    }
    out.push_str(
        "```\n\nThen point the scheduler's host name at the `probenet-scheduler` service's external address \
         (`kubectl get service probenet-scheduler`), and watch the probers register:\n\n\
         ```sh\nkubectl get pods -l app.kubernetes.io/name=probenet --all-namespaces\n```\n\n\
         ## What runs where\n\n",
    );
    for cluster in &manifests.clusters {
        out.push_str(&format!("- `{}/`:", cluster.dir));
        for file in &cluster.files {
            let kinds: Vec<String> =
                file.objects.iter().map(|object| format!("{} {}", object.kind(), object.name())).collect();
            out.push_str(&format!("\n  - `{}`: {}", file.name, kinds.join(", ")));
        }
        out.push('\n');
    }
    out.push_str(
        "\nNetwork policies deny all ingress in probenet's namespaces except: probers (and the addresses in \
         `kubernetes.scheduler_ingress_cidrs`) to the scheduler's port; the scheduler and vmalert to vminsert; \
         vmalert to vmselect; vminsert and vmselect to vmstorage; vmalert to Alertmanager.\n\n\
         Upgrades: regenerate with the new image and apply again; to rotate prober tokens, regenerate and apply \
         the central cluster, then every region.\n",
    );
    out
}
