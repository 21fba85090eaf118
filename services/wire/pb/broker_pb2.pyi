from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GatewayRequest(_message.Message):
    __slots__ = ("request_id", "hello", "open_session", "close_session", "post", "membership_change", "sync", "history", "group_states", "mark_read", "online", "system_post", "membership_snapshot", "cluster")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    HELLO_FIELD_NUMBER: _ClassVar[int]
    OPEN_SESSION_FIELD_NUMBER: _ClassVar[int]
    CLOSE_SESSION_FIELD_NUMBER: _ClassVar[int]
    POST_FIELD_NUMBER: _ClassVar[int]
    MEMBERSHIP_CHANGE_FIELD_NUMBER: _ClassVar[int]
    SYNC_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    GROUP_STATES_FIELD_NUMBER: _ClassVar[int]
    MARK_READ_FIELD_NUMBER: _ClassVar[int]
    ONLINE_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_POST_FIELD_NUMBER: _ClassVar[int]
    MEMBERSHIP_SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    hello: Hello
    open_session: OpenSession
    close_session: CloseSession
    post: Post
    membership_change: MembershipChange
    sync: Sync
    history: History
    group_states: GroupStates
    mark_read: MarkRead
    online: Online
    system_post: SystemPost
    membership_snapshot: MembershipSnapshot
    cluster: ClusterQuery
    def __init__(self, request_id: _Optional[int] = ..., hello: _Optional[_Union[Hello, _Mapping]] = ..., open_session: _Optional[_Union[OpenSession, _Mapping]] = ..., close_session: _Optional[_Union[CloseSession, _Mapping]] = ..., post: _Optional[_Union[Post, _Mapping]] = ..., membership_change: _Optional[_Union[MembershipChange, _Mapping]] = ..., sync: _Optional[_Union[Sync, _Mapping]] = ..., history: _Optional[_Union[History, _Mapping]] = ..., group_states: _Optional[_Union[GroupStates, _Mapping]] = ..., mark_read: _Optional[_Union[MarkRead, _Mapping]] = ..., online: _Optional[_Union[Online, _Mapping]] = ..., system_post: _Optional[_Union[SystemPost, _Mapping]] = ..., membership_snapshot: _Optional[_Union[MembershipSnapshot, _Mapping]] = ..., cluster: _Optional[_Union[ClusterQuery, _Mapping]] = ...) -> None: ...

class ClusterQuery(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ClusterInfo(_message.Message):
    __slots__ = ("nodes", "left")
    NODES_FIELD_NUMBER: _ClassVar[int]
    LEFT_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[BrokerNode]
    left: BrokerNode
    def __init__(self, nodes: _Optional[_Iterable[_Union[BrokerNode, _Mapping]]] = ..., left: _Optional[_Union[BrokerNode, _Mapping]] = ...) -> None: ...

class BrokerNode(_message.Message):
    __slots__ = ("name", "router", "pub", "grpc", "incarnation")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROUTER_FIELD_NUMBER: _ClassVar[int]
    PUB_FIELD_NUMBER: _ClassVar[int]
    GRPC_FIELD_NUMBER: _ClassVar[int]
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    name: str
    router: str
    pub: str
    grpc: str
    incarnation: str
    def __init__(self, name: _Optional[str] = ..., router: _Optional[str] = ..., pub: _Optional[str] = ..., grpc: _Optional[str] = ..., incarnation: _Optional[str] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("gateway_id",)
    GATEWAY_ID_FIELD_NUMBER: _ClassVar[int]
    gateway_id: str
    def __init__(self, gateway_id: _Optional[str] = ...) -> None: ...

class Person(_message.Message):
    __slots__ = ("id", "username", "display_name")
    ID_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    id: str
    username: str
    display_name: str
    def __init__(self, id: _Optional[str] = ..., username: _Optional[str] = ..., display_name: _Optional[str] = ...) -> None: ...

class OpenSession(_message.Message):
    __slots__ = ("session_id", "account", "group_ids")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    GROUP_IDS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    account: Person
    group_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, session_id: _Optional[str] = ..., account: _Optional[_Union[Person, _Mapping]] = ..., group_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class CloseSession(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class Post(_message.Message):
    __slots__ = ("session_id", "group_id", "text", "idempotency_key")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    group_id: str
    text: str
    idempotency_key: str
    def __init__(self, session_id: _Optional[str] = ..., group_id: _Optional[str] = ..., text: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class MembershipChange(_message.Message):
    __slots__ = ("account_id", "group", "joined", "change_id")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    JOINED_FIELD_NUMBER: _ClassVar[int]
    CHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    group: GroupRef
    joined: bool
    change_id: int
    def __init__(self, account_id: _Optional[str] = ..., group: _Optional[_Union[GroupRef, _Mapping]] = ..., joined: _Optional[bool] = ..., change_id: _Optional[int] = ...) -> None: ...

class MembershipSnapshot(_message.Message):
    __slots__ = ("snapshot_id", "first", "last", "groups")
    SNAPSHOT_ID_FIELD_NUMBER: _ClassVar[int]
    FIRST_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    snapshot_id: int
    first: bool
    last: bool
    groups: _containers.RepeatedCompositeFieldContainer[GroupChanges]
    def __init__(self, snapshot_id: _Optional[int] = ..., first: _Optional[bool] = ..., last: _Optional[bool] = ..., groups: _Optional[_Iterable[_Union[GroupChanges, _Mapping]]] = ...) -> None: ...

class GroupChanges(_message.Message):
    __slots__ = ("group_id", "changes")
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    group_id: str
    changes: _containers.RepeatedCompositeFieldContainer[LastChange]
    def __init__(self, group_id: _Optional[str] = ..., changes: _Optional[_Iterable[_Union[LastChange, _Mapping]]] = ...) -> None: ...

class LastChange(_message.Message):
    __slots__ = ("account_id", "joined", "change_id")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    JOINED_FIELD_NUMBER: _ClassVar[int]
    CHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    joined: bool
    change_id: int
    def __init__(self, account_id: _Optional[str] = ..., joined: _Optional[bool] = ..., change_id: _Optional[int] = ...) -> None: ...

class GroupRef(_message.Message):
    __slots__ = ("id", "name")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class Sync(_message.Message):
    __slots__ = ("nonce",)
    NONCE_FIELD_NUMBER: _ClassVar[int]
    nonce: bytes
    def __init__(self, nonce: _Optional[bytes] = ...) -> None: ...

class History(_message.Message):
    __slots__ = ("group_id", "before_seq", "after_seq", "limit")
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    BEFORE_SEQ_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    group_id: str
    before_seq: int
    after_seq: int
    limit: int
    def __init__(self, group_id: _Optional[str] = ..., before_seq: _Optional[int] = ..., after_seq: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class GroupStates(_message.Message):
    __slots__ = ("account_id", "group_ids")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_IDS_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    group_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, account_id: _Optional[str] = ..., group_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class MarkRead(_message.Message):
    __slots__ = ("account_id", "group_id", "seq")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    group_id: str
    seq: int
    def __init__(self, account_id: _Optional[str] = ..., group_id: _Optional[str] = ..., seq: _Optional[int] = ...) -> None: ...

class Online(_message.Message):
    __slots__ = ("group_id",)
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    group_id: str
    def __init__(self, group_id: _Optional[str] = ...) -> None: ...

class SystemPost(_message.Message):
    __slots__ = ("group_id", "sender_name", "text", "idempotency_key")
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_NAME_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    group_id: str
    sender_name: str
    text: str
    idempotency_key: str
    def __init__(self, group_id: _Optional[str] = ..., sender_name: _Optional[str] = ..., text: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class BrokerReply(_message.Message):
    __slots__ = ("request_id", "welcome", "done", "posted", "failure", "messages", "states", "online_members", "cluster")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    POSTED_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    ONLINE_MEMBERS_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    welcome: Welcome
    done: Done
    posted: Posted
    failure: Failure
    messages: Messages
    states: States
    online_members: OnlineMembers
    cluster: ClusterInfo
    def __init__(self, request_id: _Optional[int] = ..., welcome: _Optional[_Union[Welcome, _Mapping]] = ..., done: _Optional[_Union[Done, _Mapping]] = ..., posted: _Optional[_Union[Posted, _Mapping]] = ..., failure: _Optional[_Union[Failure, _Mapping]] = ..., messages: _Optional[_Union[Messages, _Mapping]] = ..., states: _Optional[_Union[States, _Mapping]] = ..., online_members: _Optional[_Union[OnlineMembers, _Mapping]] = ..., cluster: _Optional[_Union[ClusterInfo, _Mapping]] = ...) -> None: ...

class Messages(_message.Message):
    __slots__ = ("messages", "more")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[Delivery]
    more: bool
    def __init__(self, messages: _Optional[_Iterable[_Union[Delivery, _Mapping]]] = ..., more: _Optional[bool] = ...) -> None: ...

class GroupState(_message.Message):
    __slots__ = ("group_id", "last_seq", "read_seq")
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    READ_SEQ_FIELD_NUMBER: _ClassVar[int]
    group_id: str
    last_seq: int
    read_seq: int
    def __init__(self, group_id: _Optional[str] = ..., last_seq: _Optional[int] = ..., read_seq: _Optional[int] = ...) -> None: ...

class States(_message.Message):
    __slots__ = ("groups",)
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    groups: _containers.RepeatedCompositeFieldContainer[GroupState]
    def __init__(self, groups: _Optional[_Iterable[_Union[GroupState, _Mapping]]] = ...) -> None: ...

class OnlineMembers(_message.Message):
    __slots__ = ("account_ids",)
    ACCOUNT_IDS_FIELD_NUMBER: _ClassVar[int]
    account_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, account_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ("broker_id", "fresh")
    BROKER_ID_FIELD_NUMBER: _ClassVar[int]
    FRESH_FIELD_NUMBER: _ClassVar[int]
    broker_id: str
    fresh: bool
    def __init__(self, broker_id: _Optional[str] = ..., fresh: _Optional[bool] = ...) -> None: ...

class Done(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Posted(_message.Message):
    __slots__ = ("group_id", "seq", "ts_ms", "repeat")
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TS_MS_FIELD_NUMBER: _ClassVar[int]
    REPEAT_FIELD_NUMBER: _ClassVar[int]
    group_id: str
    seq: int
    ts_ms: int
    repeat: bool
    def __init__(self, group_id: _Optional[str] = ..., seq: _Optional[int] = ..., ts_ms: _Optional[int] = ..., repeat: _Optional[bool] = ...) -> None: ...

class Failure(_message.Message):
    __slots__ = ("code", "message", "moved_to")
    class Code(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        CODE_UNSPECIFIED: _ClassVar[Failure.Code]
        BAD_REQUEST: _ClassVar[Failure.Code]
        NOT_MEMBER: _ClassVar[Failure.Code]
        UNKNOWN_SESSION: _ClassVar[Failure.Code]
        UNKNOWN_GATEWAY: _ClassVar[Failure.Code]
        UNAVAILABLE: _ClassVar[Failure.Code]
        NOT_READY: _ClassVar[Failure.Code]
        FORBIDDEN: _ClassVar[Failure.Code]
        MOVED: _ClassVar[Failure.Code]
    CODE_UNSPECIFIED: Failure.Code
    BAD_REQUEST: Failure.Code
    NOT_MEMBER: Failure.Code
    UNKNOWN_SESSION: Failure.Code
    UNKNOWN_GATEWAY: Failure.Code
    UNAVAILABLE: Failure.Code
    NOT_READY: Failure.Code
    FORBIDDEN: Failure.Code
    MOVED: Failure.Code
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    MOVED_TO_FIELD_NUMBER: _ClassVar[int]
    code: Failure.Code
    message: str
    moved_to: str
    def __init__(self, code: _Optional[_Union[Failure.Code, str]] = ..., message: _Optional[str] = ..., moved_to: _Optional[str] = ...) -> None: ...

class Delivery(_message.Message):
    __slots__ = ("group_id", "seq", "ts_ms", "sender", "text")
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TS_MS_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    group_id: str
    seq: int
    ts_ms: int
    sender: Person
    text: str
    def __init__(self, group_id: _Optional[str] = ..., seq: _Optional[int] = ..., ts_ms: _Optional[int] = ..., sender: _Optional[_Union[Person, _Mapping]] = ..., text: _Optional[str] = ...) -> None: ...

class MembershipEvent(_message.Message):
    __slots__ = ("account_id", "group", "joined", "change_id")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    JOINED_FIELD_NUMBER: _ClassVar[int]
    CHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    group: GroupRef
    joined: bool
    change_id: int
    def __init__(self, account_id: _Optional[str] = ..., group: _Optional[_Union[GroupRef, _Mapping]] = ..., joined: _Optional[bool] = ..., change_id: _Optional[int] = ...) -> None: ...
