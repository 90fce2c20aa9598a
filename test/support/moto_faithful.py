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
        tables = {}
        def deepcopy(obj, memo=None):
            if isinstance(obj, _dm.Table):
                if id(obj) not in tables:
                    tables[id(obj)] = _copy.deepcopy(obj)
                return tables[id(obj)]
            return _copy.deepcopy(obj, memo)
        _dm.copy = _types.SimpleNamespace(deepcopy=deepcopy)
        try:
            return _twi(self, transact_items)
        finally:
            _dm.copy = _copy
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
