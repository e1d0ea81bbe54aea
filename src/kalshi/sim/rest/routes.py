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

from kalshi.sim.rest import (
    api_keys,
    block_trades,
    candlesticks,
    discovery,
    fcm,
    groups,
    historical,
    instances,
    limits,
    live_data,
    market,
    milestones,
    multivariate,
    orders,
    portfolio,
    rfq,
    subaccounts,
)
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
    # candlesticks
    "GetMarketCandlesticks": candlesticks.market_candles,
    "BatchGetMarketCandlesticks": candlesticks.batch_candles,
    "GetMarketCandlesticksByEvent": candlesticks.event_candles,
    "GetEventForecastPercentilesHistory": candlesticks.forecast_history,
    # historical
    "GetHistoricalCutoff": historical.get_cutoff,
    "GetHistoricalMarkets": historical.get_markets,
    "GetHistoricalMarket": historical.get_market,
    "GetMarketCandlesticksHistorical": historical.get_candles,
    "GetTradesHistorical": historical.get_trades,
    "GetFillsHistorical": historical.get_fills,
    "GetHistoricalOrders": historical.get_orders,
    "GetHistoricalPositions": historical.get_positions,
    # subaccounts
    "CreateSubaccount": subaccounts.create_subaccount,
    "ApplySubaccountTransfer": subaccounts.transfer,
    "GetSubaccountBalances": subaccounts.get_balances,
    "GetSubaccountTransfers": subaccounts.get_transfers,
    "GetSubaccountNetting": subaccounts.get_netting,
    "UpdateSubaccountNetting": subaccounts.update_netting,
    # exchange instances
    "IntraExchangeInstanceTransfer": instances.transfer,
    "GetIntraExchangeInstanceTransfers": instances.get_transfers,
    "GetIntraExchangeInstanceTransfer": instances.get_transfer,
    "GetTargetBalanceAllocation": instances.get_allocation,
    "SetTargetBalanceAllocation": instances.set_allocation,
    # api keys and usage level
    "GetApiKeys": api_keys.get_keys,
    "CreateApiKey": api_keys.create_key,
    "GenerateApiKey": api_keys.generate_key,
    "DeleteApiKey": api_keys.delete_key,
    "GetAccountApiUsageLevelVolumeProgress": api_keys.volume_progress,
    "UpgradeAccountApiUsageLevel": api_keys.upgrade_usage_level,
    # multivariate collections
    "GetMultivariateEventCollections": multivariate.get_collections,
    "GetMultivariateEventCollection": multivariate.get_collection,
    "CreateMarketInMultivariateEventCollection": multivariate.create_market,
    # milestones and structured targets
    "GetMilestones": milestones.get_milestones,
    "GetMilestone": milestones.get_milestone,
    "GetStructuredTargets": milestones.get_targets,
    "GetStructuredTarget": milestones.get_target,
    # live data
    "GetLiveData": live_data.get_live_data,
    "GetLiveDataByMilestone": live_data.get_live_data_by_milestone,
    "GetLiveDatas": live_data.get_live_datas,
    "GetGameStats": live_data.get_game_stats,
    "GetEventLiveData": live_data.get_event_live_data,
    "GetWeatherIndex": live_data.get_weather,
    "GetWeatherIndexCalibrations": live_data.get_weather_calibrations,
    # incentives and search
    "GetIncentivePrograms": discovery.get_incentive_programs,
    "GetTagsForSeriesCategories": discovery.get_tags_by_categories,
    "GetFiltersForSports": discovery.get_sport_filters,
    # block trades
    "GetBlockTradeProposals": block_trades.get_proposals,
    "ProposeBlockTrade": block_trades.propose,
    "AcceptBlockTradeProposal": block_trades.accept_proposal,
    # fcm
    "ListFCMSubtraders": fcm.list_subtraders,
    "CreateFCMSubtrader": fcm.create_subtrader,
    "GetFCMOrders": fcm.get_orders,
    "GetFCMFills": fcm.get_fills,
    "GetFCMPositions": fcm.get_positions,
    "GetFCMSubtraderBlockedCategories": fcm.get_blocked_categories,
    "UpdateFCMSubtraderBlockedCategories": fcm.update_blocked_categories,
    "GetFCMEventContractDailyCap": fcm.get_daily_cap,
    "UpdateFCMEventContractDailyCap": fcm.update_daily_cap,
    "DeleteFCMEventContractDailyCap": fcm.delete_daily_cap,
}
