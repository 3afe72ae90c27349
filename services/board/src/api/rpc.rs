//! The board's gRPC door: the reports for tools and the `redress` command, the same
//! [`reports::render`] the HTTP pages use.

use redress_platform::auth;
use redress_proto::v1;
use redress_proto::v1::board_service_server::BoardService;
use tonic::{Request, Response, Status};

use super::Board;
use super::reports::{self, Format, Kind};

/// `redress.complaints.v1.BoardService`.
pub struct Rpc {
    pub board: Board,
}

#[tonic::async_trait]
impl BoardService for Rpc {
    async fn get_board_report(
        &self,
        request: Request<v1::GetBoardReportRequest>,
    ) -> Result<Response<v1::GetBoardReportResponse>, Status> {
        let who = auth::identity(&request)?;
        let req = request.into_inner();
        let kind = match v1::BoardReportKind::try_from(req.kind) {
            Ok(v1::BoardReportKind::Daily) => Kind::Daily,
            Ok(v1::BoardReportKind::Monthly) => Kind::Monthly,
            Ok(v1::BoardReportKind::Yearly) => Kind::Yearly,
            _ => {
                return Err(redress_platform::error::Error::invalid(
                    "kind",
                    "is required: daily, monthly or yearly",
                )
                .into());
            }
        };
        let format = match v1::ReportFormat::try_from(req.format) {
            Ok(v1::ReportFormat::Csv) => Format::Csv,
            Ok(v1::ReportFormat::Json | v1::ReportFormat::Unspecified) => Format::Json,
            Err(_) => {
                return Err(redress_platform::error::Error::invalid(
                    "format",
                    "is not json or csv",
                )
                .into());
            }
        };
        let rendered =
            reports::render(&self.board, &who, kind, Some(req.period.as_str()), format).await?;
        Ok(Response::new(v1::GetBoardReportResponse {
            content_type: rendered.content_type.to_owned(),
            body: rendered.body.into_bytes(),
            file_name: rendered.file_name,
        }))
    }
}
