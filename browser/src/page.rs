//! One page of a browser context over the DevTools pipe: its target and flattened session, typed calls and event
//! subscriptions on it, navigation that waits for the `load` event, the page's URL, and PNG screenshots.

use base64::Engine as _;
use chromiumoxide_cdp::cdp::browser_protocol::browser::BrowserContextId;
use chromiumoxide_cdp::cdp::browser_protocol::network;
use chromiumoxide_cdp::cdp::browser_protocol::page::{
    self as cdp_page, CaptureScreenshotFormat, CaptureScreenshotParams, EventLifecycleEvent, NavigateParams,
};
use chromiumoxide_cdp::cdp::browser_protocol::target::{
    ActivateTargetParams, AttachToTargetParams, CloseTargetParams, CreateTargetParams, GetTargetInfoParams, SessionId,
    TargetId,
};
use chromiumoxide_cdp::cdp::js_protocol::runtime;
use chromiumoxide_types::{Command, MethodType};
use serde::de::DeserializeOwned;

use crate::cdp::{Cdp, CdpError, Events};

/// A page (a tab) and the session attached to it.
#[derive(Debug, Clone)]
pub struct Page {
    cdp: Cdp,
    target: TargetId,
    session: SessionId,
}

impl Page {
    /// Opens `about:blank` in a browser context and attaches to it (one flattened session on the pipe).
    pub async fn open(cdp: &Cdp, context: &BrowserContextId) -> Result<Self, CdpError> {
        let mut create = CreateTargetParams::new("about:blank");
        create.browser_context_id = Some(context.clone());
        let target = cdp.execute(None, create).await?.target_id;
        let mut attach = AttachToTargetParams::new(target.clone());
        attach.flatten = Some(true);
        match cdp.execute(None, attach).await {
            Ok(attached) => Ok(Self { cdp: cdp.clone(), target, session: attached.session_id }),
            Err(error) => {
                let _ = cdp.execute(None, CloseTargetParams::new(target)).await;
                Err(error)
            }
        }
    }

    /// Turns on the events a journey watches: page lifecycle, runtime (console, exceptions) and network.
    pub async fn enable(&self) -> Result<(), CdpError> {
        self.execute(cdp_page::EnableParams::default()).await?;
        self.execute(cdp_page::SetLifecycleEventsEnabledParams::new(true)).await?;
        self.execute(runtime::EnableParams::default()).await?;
        self.execute(network::EnableParams::default()).await?;
        Ok(())
    }

    /// Sends a command to the page.
    pub async fn execute<C: Command>(&self, command: C) -> Result<C::Response, CdpError> {
        self.cdp.execute(Some(&self.session), command).await
    }

    /// The page's events `E` from now on.
    pub fn subscribe<E: MethodType + DeserializeOwned>(&self) -> Events<E> {
        self.cdp.subscribe(Some(&self.session))
    }

    /// Opens `url` and waits for the new document's `load` event (a navigation within the document is done at
    /// once). A network error is [`CdpError::Navigation`] with Chromium's text (`net::ERR_...`).
    pub async fn goto(&self, url: &str) -> Result<(), CdpError> {
        // Subscribed first: the document may load before the navigation's answer arrives.
        let mut lifecycle = self.subscribe::<EventLifecycleEvent>();
        let navigated = self.execute(NavigateParams::new(url)).await?;
        if let Some(error) = navigated.error_text.filter(|error| !error.is_empty()) {
            return Err(CdpError::Navigation(error));
        }
        let Some(loader) = navigated.loader_id else {
            return Ok(());
        };
        while let Some(event) = lifecycle.next().await {
            if event.name == "load" && event.loader_id == loader && event.frame_id == navigated.frame_id {
                return Ok(());
            }
        }
        Err(CdpError::Closed)
    }

    /// The page's URL, as the browser knows it (it answers even while the page's main thread is busy).
    pub async fn url(&self) -> Result<String, CdpError> {
        let params = GetTargetInfoParams { target_id: Some(self.target.clone()) };
        Ok(self.cdp.execute(None, params).await?.target_info.url)
    }

    /// A PNG of what the page's window shows.
    pub async fn screenshot(&self) -> Result<Vec<u8>, CdpError> {
        // A page that is not in front may not paint: bring it there first.
        self.cdp.execute(None, ActivateTargetParams::new(self.target.clone())).await?;
        let params = CaptureScreenshotParams { format: Some(CaptureScreenshotFormat::Png), ..Default::default() };
        let shot = self.execute(params).await?;
        base64::engine::general_purpose::STANDARD.decode(AsRef::<str>::as_ref(&shot.data)).map_err(|error| {
            CdpError::Decode { method: CaptureScreenshotParams::IDENTIFIER.to_owned(), error: error.to_string() }
        })
    }
}
