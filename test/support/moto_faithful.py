import sys, threading
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
try:
    from moto.sqs import models as sqsm
    from moto.sqs.exceptions import InvalidParameterValue
    def _stale(m, handle):
        return m.receipt_handle != handle and m.had_receipt_handle(handle)
    _cmv = sqsm.SQSBackend.change_message_visibility
    def change_message_visibility(self, queue_name, receipt_handle, visibility_timeout):
        for m in self.get_queue(queue_name)._messages:
            if _stale(m, receipt_handle):
                raise InvalidParameterValue("Value " + receipt_handle + " for parameter ReceiptHandle is invalid. Reason: Message does not exist or is not available for visibility timeout change.")
        return _cmv(self, queue_name, receipt_handle, visibility_timeout)
    sqsm.SQSBackend.change_message_visibility = change_message_visibility
except Exception as e:
    print("gq: moto SQS receipt patch not applied:", repr(e), file=sys.stderr)
try:
    import copy as _copy, types as _types
    import moto.dynamodb.models as _dm
    _twi = _dm.DynamoDBBackend.transact_write_items
    def transact_write_items(self, transact_items):
        # moto backs up every table it touches (a deep copy of the whole table, per item of the
        # transaction) to restore on failure. Same semantics, cost of the items touched: the
        # "copy" of a table is the table itself, and an undo log of the items this transaction
        # writes (each one's state before its first write) restores them on failure. Safe
        # because DynamoDB requests are serialised (below).
        undo = []
        seen = set()
        def remember(table_name, key):
            table = self.get_table(table_name)
            hk, rk = self.get_keys_value(table, key)
            ident = (table_name, hk, rk)
            if ident in seen:
                return
            seen.add(ident)
            undo.append((table, hk, rk, _copy.deepcopy(table.get_item(hk, rk))))
        def wrap(name):
            f = getattr(self, name)
            def wrapper(table_name, *a, **kw):
                if name == 'put_item':
                    attrs = a[0] if a else kw['item_attrs']
                    table = self.get_table(table_name)
                    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                    if table.range_key_attr is not None:
                        key[table.range_key_attr] = attrs[table.range_key_attr]
                else:
                    key = a[0] if a else kw['key']
                remember(table_name, key)
                return f(table_name, *a, **kw)
            return wrapper
        def deepcopy(obj, memo=None):
            return obj if isinstance(obj, _dm.Table) else _copy.deepcopy(obj, memo)
        for name in ('put_item', 'update_item', 'delete_item'):
            setattr(self, name, wrap(name))
        _dm.copy = _types.SimpleNamespace(deepcopy=deepcopy)
        try:
            return _twi(self, transact_items)
        except BaseException:
            for table, hk, rk, before in reversed(undo):
                if table.range_key_attr is not None:
                    if before is None:
                        table.items[hk].pop(rk, None)
                    else:
                        table.items[hk][rk] = before
                elif before is None:
                    table.items.pop(hk, None)
                else:
                    table.items[hk] = before
            raise
        finally:
            _dm.copy = _copy
            for name in ('put_item', 'update_item', 'delete_item'):
                self.__dict__.pop(name, None)
    _dm.DynamoDBBackend.transact_write_items = transact_write_items
except Exception as e:
    print("gq: moto DynamoDB transaction speed-up not applied:", repr(e), file=sys.stderr)
app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()
def faithful(environ, start_response):
    if environ.get('HTTP_X_AMZ_TARGET', '').startswith('DynamoDB_'):
        with lock:
            return list(app(environ, start_response))
    return app(environ, start_response)
run_simple(sys.argv[1], int(sys.argv[2]), faithful, threaded=True)
