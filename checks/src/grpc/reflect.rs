//! The types of a call from the server's reflection service: the file that defines the service and the files it
//! imports (the well-known `google/protobuf/*` ones are built in), bounded in number.

use std::collections::BTreeMap;
use std::time::Duration;

use prost::Message as _;
use prost_reflect::{DescriptorPool, MethodDescriptor};

use super::spec::{Call, status_name};
use super::wire::{Channel, ReflectionAnswer, ReflectionQuery, ReflectionRequest, ReflectionResponse};
use crate::outcome::{Failure, Reason};

/// The reflection services tried, newest first.
const PATHS: [&str; 2] = [
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];
/// The most files read for one call's types.
const MAX_FILES: usize = 64;
/// The most reflection questions asked for one call.
const MAX_QUERIES: usize = 32;

/// Finds `call`'s method by reflection, asking no longer than until `deadline` (as `remaining()` tells).
pub async fn method(
    channel: &mut Channel,
    call: &Call,
    remaining: impl Fn() -> Duration,
) -> Result<MethodDescriptor, Failure> {
    let mut path = None;
    let mut files: BTreeMap<String, prost_types::FileDescriptorProto> = BTreeMap::new();
    let mut wanted = vec![ReflectionQuery::FileContainingSymbol(call.service.clone())];
    let mut queries = 0;
    let mut pool = DescriptorPool::global();
    while let Some(query) = wanted.pop() {
        queries += 1;
        if queries > MAX_QUERIES {
            return Err(Failure::new(Reason::Protocol, format!("reflection: more than {MAX_QUERIES} questions")));
        }
        let answer = ask(channel, &mut path, query.clone(), &remaining).await?;
        match answer {
            ReflectionAnswer::Error(error) => {
                let code = u32::try_from(error.error_code).unwrap_or(2);
                return Err(refused(&query, code, &error.error_message));
            }
            ReflectionAnswer::Files(answer) => {
                for bytes in answer.file_descriptor_proto {
                    let file = prost_types::FileDescriptorProto::decode(bytes).map_err(|error| {
                        Failure::new(Reason::Protocol, format!("reflection: a file descriptor: {error}"))
                    })?;
                    let name = file.name.clone().unwrap_or_default();
                    if files.contains_key(&name) || pool.get_file_by_name(&name).is_some() {
                        continue;
                    }
                    if files.len() >= MAX_FILES {
                        return Err(Failure::new(
                            Reason::Protocol,
                            format!("reflection: the service's types span more than {MAX_FILES} files"),
                        ));
                    }
                    files.insert(name, file);
                }
            }
        }
        // Ask for the imports not seen yet.
        for file in files.values() {
            for dependency in &file.dependency {
                let asked = wanted.iter().any(|q| matches!(q, ReflectionQuery::FileByFilename(n) if n == dependency));
                if !files.contains_key(dependency) && pool.get_file_by_name(dependency).is_none() && !asked {
                    wanted.push(ReflectionQuery::FileByFilename(dependency.clone()));
                }
            }
        }
    }
    pool.add_file_descriptor_protos(files.into_values())
        .map_err(|error| Failure::new(Reason::Protocol, format!("reflection: the file descriptors: {error}")))?;
    let service = pool.get_service_by_name(&call.service).ok_or_else(|| {
        Failure::new(Reason::Status, format!("reflection: the server does not describe the service {:?}", call.service))
    })?;
    let method = service.methods().find(|method| method.name() == call.method).ok_or_else(|| {
        Failure::new(Reason::Status, format!("the service {:?} has no method {:?}", call.service, call.method))
    })?;
    if method.is_client_streaming() || method.is_server_streaming() {
        return Err(Failure::new(
            Reason::Unsupported,
            format!("{} is a streaming method; only unary methods can be called", call.name()),
        ));
    }
    Ok(method)
}

/// One question, on the reflection service that answers (`v1`, else `v1alpha`, remembered in `path`).
async fn ask(
    channel: &mut Channel,
    path: &mut Option<&'static str>,
    query: ReflectionQuery,
    remaining: &impl Fn() -> Duration,
) -> Result<ReflectionAnswer, Failure> {
    let request = ReflectionRequest { host: String::new(), query: Some(query.clone()) }.encode_to_vec();
    let candidates: &[&'static str] = match path {
        Some(known) => std::slice::from_ref(known),
        None => &PATHS,
    };
    let mut last = None;
    for candidate in candidates {
        let reply = channel.unary(candidate, &request, remaining()).await?;
        // UNIMPLEMENTED: not this version.
        if reply.code == 12 {
            last = Some(reply);
            continue;
        }
        if reply.code != 0 {
            return Err(refused(&query, reply.code, &reply.message));
        }
        *path = Some(candidate);
        let body = reply.body.unwrap_or_default();
        let response = ReflectionResponse::decode(body)
            .map_err(|error| Failure::new(Reason::Protocol, format!("reflection: the answer: {error}")))?;
        return response
            .answer
            .ok_or_else(|| Failure::new(Reason::Protocol, "reflection: an answer without files or error"));
    }
    let message = last.map(|reply| reply.message).unwrap_or_default();
    Err(Failure::new(
        Reason::Status,
        format!("the server has no reflection service (UNIMPLEMENTED {message}), which a call needs")
            .replace(" )", ")"),
    ))
}

/// A question the reflection service refused (in an error answer, or as the call's status): what was asked, the
/// status and the server's message. `NOT_FOUND` for the service's symbol says the server does not know it.
fn refused(query: &ReflectionQuery, code: u32, message: &str) -> Failure {
    let what = match query {
        ReflectionQuery::FileContainingSymbol(symbol) if code == 5 => {
            format!("the server does not know the service {symbol:?}")
        }
        ReflectionQuery::FileContainingSymbol(symbol) => format!("the file of {symbol:?}"),
        ReflectionQuery::FileByFilename(name) => format!("the file {name:?}"),
    };
    Failure::new(Reason::Status, format!("reflection: {what}: {} {message}", status_name(code)).trim_end().to_owned())
}
