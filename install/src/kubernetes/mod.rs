//! The Kubernetes target: typed objects (k8s-openapi) for the central cluster (scheduler, VictoriaMetrics
//! cluster, vmalert, Alertmanager) and one prober deployment per region cluster, written as YAML with a README.
//!
//! The output is Kustomize's shape: `central/` (the central cluster), `base/prober/` (the prober Deployment, the
//! same everywhere) and `regions/NAME/` (an overlay of the base per region); each has a `kustomization.yaml`, so
//! `kubectl apply --server-side -k DIR` applies it.
//!
//! Secrets: prober tokens, the admin and dashboard tokens, the store password and the CA are kept in the output
//! directory's `secrets/` ([`Secrets::keep`]: read back on every render, renewed only with `--rotate`) and
//! written as `stringData` into `01-secrets.yaml` files created 0600; the scheduler gets only the tokens'
//! SHA-256 hashes (its `tokens.json`).

mod build;
mod central;
mod policy;
mod region;
mod secrets;

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde_json::{Value, json};

pub use self::central::{CHECKSUM_ANNOTATION, PUBLIC_SERVICE, scheduler_service_host};
pub use self::region::scheduler_url;
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
    /// A disruption budget.
    PodDisruptionBudget(PodDisruptionBudget),
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
            Self::PodDisruptionBudget(_) => PodDisruptionBudget::KIND,
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
            Self::PodDisruptionBudget(object) => &object.metadata,
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
            Self::PodDisruptionBudget(object) => serde_json::to_value(object),
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

/// What one cluster applies: a directory with its files and `kustomization.yaml`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// Its directory: `central` or `regions/NAME`.
    pub dir: String,
    /// Its kubeconfig context (`None`: the current one).
    pub context: Option<String>,
    /// Its own files.
    pub files: Vec<File>,
    /// Its `kustomization.yaml`.
    pub kustomization: Kustomization,
    /// The objects `kubectl kustomize DIR` renders (its files, and for a region the base patched).
    pub objects: Vec<Object>,
}

/// A `kustomization.yaml`: the few fields the manifests use.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Kustomization {
    /// The namespace of every object (`namespace:`).
    pub namespace: Option<String>,
    /// Files and directories (`resources:`).
    pub resources: Vec<String>,
    /// JSON patches (`patches:`).
    pub patches: Vec<Patch>,
}

/// A JSON patch of one object.
#[derive(Debug, Clone, PartialEq)]
pub struct Patch {
    /// The object's kind.
    pub kind: String,
    /// Its name before the patch.
    pub name: String,
    /// The operations (RFC 6902).
    pub ops: Vec<Value>,
}

impl Kustomization {
    /// Its YAML.
    pub fn yaml(&self) -> String {
        let mut value = json!({
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
        });
        if let Some(namespace) = &self.namespace {
            value["namespace"] = json!(namespace);
        }
        value["resources"] = json!(self.resources);
        if !self.patches.is_empty() {
            let patches: Vec<Value> = self
                .patches
                .iter()
                .map(|patch| {
                    json!({
                        "target": {"kind": patch.kind, "name": patch.name},
                        "patch": serde_json::to_string(&patch.ops).unwrap_or_default(),
                    })
                })
                .collect();
            value["patches"] = json!(patches);
        }
        yaml_out::to_documents(&[value])
    }
}

/// Every cluster's objects.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifests {
    /// The stack's name.
    pub stack: String,
    /// The probers' base (`base/prober/`).
    pub base: Vec<File>,
    /// The central cluster first, then each region.
    pub clusters: Vec<Cluster>,
    /// Whether the TLS secrets are included (else the README says how to create them).
    pub tls_included: bool,
    /// The names the scheduler's certificate must hold: its host and the regions' `scheduler_host`s.
    pub tls_names: Vec<String>,
    /// Secrets the user creates before applying: (context, namespace, Secret, what it is).
    pub user_secrets: Vec<(Option<String>, String, String, String)>,
    /// The schedulers share a PostgreSQL store (which then holds the tokens).
    pub postgres: bool,
}

/// Builds every object of `loaded`'s stack with these secrets.
pub fn manifests(loaded: &Loaded, secrets: &Secrets) -> Manifests {
    let mut clusters = vec![central::cluster(loaded, secrets)];
    for (name, region) in &loaded.stack.regions {
        clusters.push(region::cluster(loaded, name, region, secrets));
    }
    Manifests {
        stack: loaded.stack.name.clone(),
        base: region::base(loaded),
        clusters,
        tls_included: secrets.tls.is_some(),
        tls_names: tls_names(&loaded.stack),
        user_secrets: user_secrets(&loaded.stack),
        postgres: matches!(loaded.stack.scheduler.store, crate::stack::SchedulerStore::Postgres(_)),
    }
}

/// The Secrets the stack names and the user makes: theirs (`kubernetes.secrets`) in each namespace that uses
/// them, and the PostgreSQL password and CA given as Secrets.
fn user_secrets(stack: &crate::stack::Stack) -> Vec<(Option<String>, String, String, String)> {
    let k = &stack.kubernetes;
    let mut out = Vec::new();
    if let crate::stack::SchedulerStore::Postgres(store) = &stack.scheduler.store {
        if let crate::stack::SecretSource::KubernetesSecret(name) = &store.password {
            out.push((k.context.clone(), k.namespace.clone(), name.clone(), "key `password`: PostgreSQL".to_owned()));
        }
        if let Some(crate::stack::SecretSource::KubernetesSecret(name)) = &store.ca {
            out.push((
                k.context.clone(),
                k.namespace.clone(),
                name.clone(),
                "key `ca.crt`: PostgreSQL's CA".to_owned(),
            ));
        }
    }
    for secret in &k.secrets {
        let what = match secret.mode {
            crate::stack::UserSecretMode::Env => "every key an environment variable".to_owned(),
            crate::stack::UserSecretMode::Files => {
                format!("every key a file in {}", crate::stack::user_secret_dir(&secret.name))
            }
        };
        if secret.scheduler {
            out.push((k.context.clone(), k.namespace.clone(), secret.name.clone(), format!("{what} (scheduler)")));
        }
        if secret.probers {
            for region in stack.regions.values() {
                out.push((
                    region.context.clone(),
                    region.namespace.clone(),
                    secret.name.clone(),
                    format!("{what} (probers)"),
                ));
            }
        }
    }
    out
}

/// The names the scheduler's certificate holds: its host, the regions' `scheduler_host`s and its Service's
/// in-cluster name.
pub fn tls_names(stack: &crate::stack::Stack) -> Vec<String> {
    let mut names = vec![stack.scheduler.host.clone()];
    let service = scheduler_service_host(&stack.kubernetes.namespace);
    for host in stack.regions.values().filter_map(|region| region.scheduler_host.as_ref()).chain([&service]) {
        if !names.contains(host) {
            names.push(host.clone());
        }
    }
    names
}

/// `probenet install kubernetes`: the secrets kept in `out/secrets/` (renewed with `rotate`), then every file
/// written. Returns the manifests and the files written.
pub fn render(
    loaded: &Loaded,
    out: &Path,
    rotate: bool,
) -> Result<(Manifests, Vec<PathBuf>), crate::secrets::SecretError> {
    if matches!(loaded.stack.scheduler.store, crate::stack::SchedulerStore::Local { .. }) {
        return Err(crate::secrets::SecretError::Refused(
            "scheduler.store: postgresql runs a server on one host (install local); on Kubernetes give the URL \
             of your database (postgres://USER@HOST:5432/DB?sslmode=require)"
                .to_owned(),
        ));
    }
    let secrets = Secrets::keep(&out.join(SECRETS_DIR), &loaded.stack, &tls_names(&loaded.stack), rotate)?;
    let manifests = manifests(loaded, &secrets);
    let written =
        manifests.write(out).map_err(|source| crate::secrets::SecretError::Io { path: out.to_owned(), source })?;
    Ok((manifests, written))
}

/// The output directory's folder of kept secrets (0700): never applied, never to be committed.
pub const SECRETS_DIR: &str = "secrets";

/// The checksum of what a pod reads from the cluster's config maps and secrets (but those in `skip`, which it
/// re-reads by itself): the pod template's annotation, so that a change rolls the pods.
pub(crate) fn config_checksum(pod: Option<&PodSpec>, objects: &[Object], skip: &[&str]) -> String {
    let Some(pod) = pod else { return String::new() };
    let mut config_maps = Vec::new();
    let mut secrets = Vec::new();
    for volume in pod.volumes.iter().flatten() {
        config_maps.extend(volume.config_map.as_ref().map(|source| source.name.clone()));
        secrets.extend(volume.secret.as_ref().and_then(|source| source.secret_name.clone()));
    }
    for container in pod.containers.iter().chain(pod.init_containers.iter().flatten()) {
        for env in container.env.iter().flatten().filter_map(|env| env.value_from.as_ref()) {
            config_maps.extend(env.config_map_key_ref.as_ref().map(|key| key.name.clone()));
            secrets.extend(env.secret_key_ref.as_ref().map(|key| key.name.clone()));
        }
        for env in container.env_from.iter().flatten() {
            config_maps.extend(env.config_map_ref.as_ref().map(|source| source.name.clone()));
            secrets.extend(env.secret_ref.as_ref().map(|source| source.name.clone()));
        }
    }
    let mut hashed = Vec::new();
    for object in objects {
        let (kind, name, data) = match object {
            Object::ConfigMap(map) => ("ConfigMap", map.metadata.name.clone(), json!(map.data)),
            Object::Secret(secret) => ("Secret", secret.metadata.name.clone(), json!(secret.string_data)),
            _ => continue,
        };
        let name = name.unwrap_or_default();
        let used = if kind == "ConfigMap" { &config_maps } else { &secrets };
        if used.contains(&name) && !skip.contains(&name.as_str()) {
            hashed.push(json!([kind, name, data]));
        }
    }
    hashed.sort_by_key(Value::to_string);
    probenet_checks::tls::sha256_hex(Value::Array(hashed).to_string().as_bytes())
}

/// Sets the checksum annotation on every pod template of `files` (see [`config_checksum`]).
pub(crate) fn annotate_checksums(files: &mut [File], skip: &[&str]) {
    let objects: Vec<Object> = files.iter().flat_map(|file| file.objects.clone()).collect();
    for object in files.iter_mut().flat_map(|file| file.objects.iter_mut()) {
        let template = match object {
            Object::Deployment(deployment) => deployment.spec.as_mut().map(|spec| &mut spec.template),
            Object::StatefulSet(set) => set.spec.as_mut().map(|spec| &mut spec.template),
            _ => None,
        };
        let Some(template) = template else { continue };
        let checksum = config_checksum(template.spec.as_ref(), &objects, skip);
        template
            .metadata
            .get_or_insert_with(Default::default)
            .annotations
            .get_or_insert_with(Default::default)
            .insert(CHECKSUM_ANNOTATION.to_owned(), checksum);
    }
}

impl Manifests {
    /// Writes `DIR/base/prober/`, `DIR/central/` and `DIR/regions/NAME/` (each with its `kustomization.yaml`;
    /// files with secrets 0600) and `DIR/README.md`; returns the files written.
    pub fn write(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        let mut written = Vec::new();
        let base = Kustomization {
            namespace: None,
            resources: self.base.iter().map(|file| file.name.clone()).collect(),
            patches: Vec::new(),
        };
        let mut dirs = vec![(region::BASE_DIR.to_owned(), &self.base, base)];
        for cluster in &self.clusters {
            dirs.push((cluster.dir.clone(), &cluster.files, cluster.kustomization.clone()));
        }
        for (name, files, kustomization) in dirs {
            let cluster_dir = dir.join(name);
            fs::create_dir_all(&cluster_dir)?;
            for file in files {
                let path = cluster_dir.join(&file.name);
                write_file(&path, file.yaml().as_bytes(), file.is_private())?;
                written.push(path);
            }
            let path = cluster_dir.join("kustomization.yaml");
            write_file(&path, kustomization.yaml().as_bytes(), false)?;
            written.push(path);
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
                cluster.objects.iter().map(move |object| Step {
                    action: Action::Object {
                        cluster: cluster.dir.clone(),
                        file: format!("{}/", cluster.dir),
                        kind: object.kind().to_owned(),
                        name: object.name(),
                    },
                    change: Change::Create,
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
         Generated by `probenet install kubernetes`. Each directory is a Kustomize directory: `central/` for the \
         central cluster, `base/prober/` for what every region runs, and `regions/NAME/` for each region (an \
         overlay of the base).\n\n\
         `secrets/` holds the CA and its key, the tokens and the passwords (0700, files 0600): generating again \
         into this directory reads them back, so re-applying changes no secret; `--rotate` makes them all anew. \
         Files named `01-secrets.yaml` hold them as Kubernetes Secrets (0600). Keep `secrets/` and the \
         `01-secrets.yaml` files out of version control (or seal them); commit the rest.\n\n\
         - admin token (read API, `/metrics`, `/api/v1/cluster`): `secrets/admin.token`\n\
         - dashboard token (open the dashboard once with `?token=...`): `secrets/dashboard.token`\n\
         - the CA probers and browsers trust: `secrets/ca.pem`\n\n",
        manifests.stack
    );
    if !manifests.user_secrets.is_empty() {
        out.push_str(
            "## Before applying: your Secrets\n\nThe stack file names these Secrets; create each one (`kubectl \
             create secret generic NAME --from-literal=KEY=... --from-file=KEY=FILE`) where it is used:\n\n",
        );
        for (context, namespace, name, what) in &manifests.user_secrets {
            let context = context.as_deref().map(|context| format!("--context {context} ")).unwrap_or_default();
            out.push_str(&format!("- `{name}` in `{context}-n {namespace}`: {what}\n"));
        }
        out.push('\n');
    }
    out.push_str("## Apply\n\nIn this order: the central cluster first, then each region.\n\n```sh\n");
    for cluster in &manifests.clusters {
        let context = cluster.context.as_deref().map(|context| format!(" --context {context}")).unwrap_or_default();
        out.push_str(&format!("kubectl{context} apply --server-side -k {}/\n", cluster.dir));
    }
    out.push_str(&format!(
        "```\n\nThe scheduler's certificate holds {}. Point the scheduler's public name at the \
         `{PUBLIC_SERVICE}` Service's external address when there is one (`kubectl get service \
         {PUBLIC_SERVICE}`), and watch the probers register:\n\n\
         ```sh\nkubectl get pods -l app.kubernetes.io/name=probenet --all-namespaces\n```\n\n\
         ## What runs where\n\n",
        manifests.tls_names.iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", ")
    ));
    for cluster in &manifests.clusters {
        out.push_str(&format!("- `{}/`:", cluster.dir));
        let kinds: Vec<String> =
            cluster.objects.iter().map(|object| format!("{} {}", object.kind(), object.name())).collect();
        out.push_str(&format!(" {}\n", kinds.join(", ")));
    }
    out.push_str(
        "\nNetwork policies deny all ingress in probenet's namespaces except: probers (and the addresses in \
         `kubernetes.scheduler_ingress_cidrs`) to the scheduler's port; the scheduler and vmalert to vminsert; \
         vmalert to vmselect; vminsert and vmselect to vmstorage; vmalert to Alertmanager.\n\n\
         Upgrades: generate again into this directory with the new image and apply again, central first; pods \
         whose config or secrets changed roll (their `probenet.io/config-checksum` annotation changed). To \
         renew every secret, generate with `--rotate` and apply the central cluster, then every region.\n",
    );
    if manifests.postgres {
        out.push_str(
            "\nThe schedulers keep the tokens in PostgreSQL: the first one copies those of `tokens.json` into an \
             empty database, which is the reference from then on. After `--rotate`, create the new tokens there too \
             (`probenet token create --store postgres://...`) and revoke the old ones.\n",
        );
    }
    out
}
