"""The REST route table: every operationId the simulator serves and the handler that serves it.

To serve another operation of ``specs/openapi.yaml``: write ``async def handler(call: RestCall) -> Reply`` in the
module of its tag (or a new one beside them) and add one line here. The dispatcher
(:mod:`kalshi.sim.rest.dispatch`) mounts each operation at the path and method the spec gives it, checks
signatures, rate limits and the parameters the spec declares before calling the handler, and answers 501
(naming the operation) for operations missing from this table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from kalshi.sim.rest import groups, limits, market, orders, portfolio, rfq
from kalshi.sim.rest.common import Handler

__all__ = ["ROUTES"]

ROUTES: Final[Mapping[str, Handler]] = {
    # market
    "GetExchangeStatus": market.exchange_status,
    "GetExchangeSchedule": market.exchange_schedule,
    "GetUserDataTimestamp": market.user_data_timestamp,
    "GetExchangeAnnouncements": market.announcements,
    "GetSeriesFeeChanges": market.series_fee_changes,
    "GetSeriesList": market.get_series_list,
    "GetSeries": market.get_series,
    "GetEvents": market.get_events,
    "GetMultivariateEvents": market.get_multivariate_events,
    "GetEvent": market.get_event,
    "GetEventMetadata": market.get_event_metadata,
    "GetEventFeeChanges": market.get_event_fee_changes,
    "GetMarkets": market.get_markets,
    "GetMarket": market.get_market,
    "GetMarketOrderbook": market.get_orderbook,
    "GetMarketOrderbooks": market.get_orderbooks,
    "GetTrades": market.get_trades,
    # portfolio
    "GetBalance": portfolio.get_balance,
    "GetPositions": portfolio.get_positions,
    "GetFills": portfolio.get_fills,
    "GetSettlements": portfolio.get_settlements,
    "GetPortfolioRestingOrderTotalValue": portfolio.get_resting_value,
    "GetDeposits": portfolio.get_deposits,
    "GetWithdrawals": portfolio.get_withdrawals,
    # orders
    "GetOrders": orders.get_orders,
    "GetOrder": orders.get_order,
    "GetOrderQueuePositions": orders.get_queue_positions,
    "GetOrderQueuePosition": orders.get_queue_position,
    "CreateOrderV2": orders.create_order,
    "BatchCreateOrdersV2": orders.batch_create,
    "CancelOrderV2": orders.cancel_order,
    "BatchCancelOrdersV2": orders.batch_cancel,
    "CancelAllOrders": orders.cancel_all,
    "AmendOrderV2": orders.amend_order,
    "DecreaseOrderV2": orders.decrease_order,
    # groups
    "GetOrderGroups": groups.get_groups,
    "CreateOrderGroup": groups.create_group,
    "GetOrderGroup": groups.get_group,
    "DeleteOrderGroup": groups.delete_group,
    "ResetOrderGroup": groups.reset_group,
    "TriggerOrderGroup": groups.trigger_group,
    "UpdateOrderGroupLimit": groups.update_limit,
    # rfq
    "GetCommunicationsID": rfq.communications_id,
    "GetRFQs": rfq.get_rfqs,
    "CreateRFQ": rfq.create_rfq,
    "GetRFQ": rfq.get_rfq,
    "DeleteRFQ": rfq.delete_rfq,
    "GetQuotes": rfq.get_quotes,
    "CreateQuote": rfq.create_quote,
    "GetRFQQuote": rfq.get_quote,
    "GetQuote": rfq.get_quote,
    "DeleteRFQQuote": rfq.delete_quote,
    "DeleteQuote": rfq.delete_quote,
    "AcceptRFQQuote": rfq.accept_quote,
    "AcceptQuote": rfq.accept_quote,
    "ConfirmRFQQuote": rfq.confirm_quote,
    "ConfirmQuote": rfq.confirm_quote,
    # limits
    "GetAccountApiLimits": limits.get_limits,
    "GetAccountEndpointCosts": limits.get_costs,
}
